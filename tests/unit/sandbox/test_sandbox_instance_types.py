"""sandbox/instance_types.py: curated KWOK instance types and their strict validator."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SANDBOX = REPO / "sandbox"
COMMITTED = SANDBOX / "data" / "instance-types.json"
PRICES = SANDBOX / "data" / "prices-us-east-1.json"
GO_PRICING = "pkg/providers/pricing/zz_generated.pricing_aws.go"
AWS = "karpenter.k8s.aws/"


@pytest.fixture(scope="module")
def types(instance_types_mod):
    return instance_types_mod.validate(COMMITTED)


@pytest.fixture(scope="module")
def by_name(types):
    return {t["name"]: t for t in types}


def req(offering: dict, key: str) -> dict | None:
    return next((r for r in offering["Requirements"] if r["key"] == key), None)


def value(offering: dict, key: str) -> str:
    r = req(offering, key)
    assert r is not None and r["operator"] == "In" and len(r["values"]) == 1, (key, r)
    return r["values"][0]


def write(tmp_path: Path, doc: object) -> Path:
    p = tmp_path / "instance-types.json"
    p.write_text(json.dumps(doc))
    return p


# ------------------------------------------------------------------------------------------ generated data


def test_committed_file_is_reproducible(instance_types_mod, tmp_path):
    out = tmp_path / "regen.json"
    instance_types_mod.generate(out)
    assert out.read_text() == COMMITTED.read_text(), "run: python sandbox/instance_types.py generate"


def test_every_curated_type_present_once(instance_types_mod, types):
    names = [t["name"] for t in types]
    assert names == list(instance_types_mod.CURATED)
    assert 50 <= len(names) <= 70


def test_prices_positive_and_spot_cheaper(by_name, instance_types_mod):
    on_demand = json.loads(PRICES.read_text())["onDemand"]
    assert set(on_demand) == set(instance_types_mod.CURATED)
    for name, t in by_name.items():
        od = [o for o in t["offerings"] if value(o, "karpenter.sh/capacity-type") == "on-demand"]
        spot = [o for o in t["offerings"] if value(o, "karpenter.sh/capacity-type") == "spot"]
        assert len(od) == len(spot) == 3, name
        for o in od:
            assert o["Price"] == on_demand[name] > 0
        for o in spot:
            assert 0 < o["Price"] < on_demand[name], name
            assert 0.29 <= o["Price"] / on_demand[name] <= 0.46, name


def test_three_zones_with_moto_zone_ids(by_name, instance_types_mod):
    zone_ids = instance_types_mod.moto_zone_ids()
    for name, t in by_name.items():
        zones = {value(o, "topology.kubernetes.io/zone") for o in t["offerings"]}
        assert zones == {"us-east-1a", "us-east-1b", "us-east-1c"}, name
        for o in t["offerings"]:
            assert value(o, "topology.k8s.aws/zone-id") == zone_ids[value(o, "topology.kubernetes.io/zone")]
            assert o["Available"] is True and o["ReservationCapacity"] == 0


def test_architectures(by_name):
    arm = {n for n, t in by_name.items() if t["architecture"] == "arm64"}
    assert arm == {n for n in by_name if n.split(".")[0] in ("c7g", "m7g", "r7g")}
    assert {"c7g.large", "m7g.16xlarge", "r7g.8xlarge"} <= arm
    assert by_name["m6i.large"]["architecture"] == "amd64"
    assert all(t["operatingSystems"] == ["linux"] for t in by_name.values())


def test_gpu_types(by_name):
    expected = {"g5.xlarge": ("1", "a10g"), "g5.2xlarge": ("1", "a10g"), "g5.12xlarge": ("4", "a10g")}
    expected["p4d.24xlarge"] = ("8", "a100")
    for name, (count, gpu) in expected.items():
        t = by_name[name]
        assert t["resources"]["nvidia.com/gpu"] == count
        for o in t["offerings"]:
            assert value(o, AWS + "instance-gpu-count") == count
            assert value(o, AWS + "instance-gpu-name") == gpu
            assert value(o, AWS + "instance-gpu-manufacturer") == "nvidia"
    for name, t in by_name.items():
        if name not in expected:
            assert "nvidia.com/gpu" not in t["resources"]
            assert req(t["offerings"][0], AWS + "instance-gpu-count") == {
                "key": AWS + "instance-gpu-count",
                "operator": "DoesNotExist",
            }


def test_aws_labels(by_name):
    o = by_name["m7i.12xlarge"]["offerings"][0]
    assert value(o, AWS + "instance-category") == "m"
    assert value(o, AWS + "instance-family") == "m7i"
    assert value(o, AWS + "instance-generation") == "7"
    assert value(o, AWS + "instance-size") == "12xlarge"
    assert value(o, AWS + "instance-cpu") == "48"
    assert value(o, AWS + "instance-memory") == "196608"
    o = by_name["p4d.24xlarge"]["offerings"][0]
    assert (value(o, AWS + "instance-category"), value(o, AWS + "instance-generation")) == ("p", "4")


def test_resources_match_eks_model(by_name):
    # m6i.large: 3 ENIs x (10 IPs - 1) + 2 = 29 pods (eni-max-pods.txt)
    m = by_name["m6i.large"]["resources"]
    assert m["pods"] == "29" and m["cpu"] == "2" and m["ephemeral-storage"] == "17Gi"
    # 8192 - ceil(8192*0.075)=615 - (11*29+255)=574 - 100 eviction + 10 KWOK = 6913Mi
    assert m["memory"] == "6913Mi"
    # Graviton loses 64 MiB CMA first: 4032 - 303 - 574 - 100 + 10
    assert by_name["c7g.large"]["resources"]["memory"] == "3065Mi"
    assert by_name["p4d.24xlarge"]["resources"]["pods"] == "737"  # default card: 15 ENIs x 49 + 2


def test_price_table_parser(instance_types_mod, tmp_path):
    go = tmp_path / "zz.go"
    go.write_text(
        "// generated at 2026-07-06T14:20:29Z for us-east-1\n"
        "var InitialOnDemandPricesAWS = map[string]map[ec2types.InstanceType]float64{\n"
        '\t// us-east-1\n\t"us-east-1": {\n\t\t// m6i family\n'
        '\t\t"m6i.large": 0.096000, "m6i.xlarge": 0.192000,\n\t},\n'
        '\t"us-west-2": {\n\t\t"m6i.large": 9.0,\n\t},\n}\n'
    )
    assert instance_types_mod.parse_go_pricing(go) == {"m6i.large": 0.096, "m6i.xlarge": 0.192}
    assert instance_types_mod.parse_go_pricing(go, "us-west-2") == {"m6i.large": 9.0}
    with pytest.raises(ValueError):
        instance_types_mod.parse_go_pricing(go, "eu-west-1")


def cached_module_file(module_at_version: str, relative: str) -> Path:
    """A file from the local Go module cache (never downloaded here); skip the test when absent."""
    try:
        gomodcache = subprocess.run(
            ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pytest.skip("no Go toolchain")
    path = Path(gomodcache) / module_at_version / relative
    if not path.exists():
        pytest.skip(f"{path} not in the module cache")
    return path


def test_upstream_kwok_files_when_cached(instance_types_mod):
    """The validator accepts Karpenter's embedded default file and rejects its stale example."""
    default = cached_module_file("sigs.k8s.io/karpenter@v1.14.1", "kwok/cloudprovider/instance_types.json")
    assert len(instance_types_mod.validate(default)) == 144
    stale = default.parents[1] / "examples" / "instance_types.json"
    with pytest.raises(instance_types_mod.ValidationError, match="unknown key 'capacityType'"):
        instance_types_mod.validate(stale)


def test_committed_prices_match_go_module_when_cached(instance_types_mod):
    """Only where the Go module cache has karpenter-provider-aws v1.14.1 (no download here)."""
    go_file = cached_module_file("github.com/aws/karpenter-provider-aws@v1.14.1", GO_PRICING)
    table = instance_types_mod.parse_go_pricing(go_file)
    committed = json.loads(PRICES.read_text())["onDemand"]
    assert committed == {n: table[n] for n in committed}


def test_spot_fraction_is_deterministic(instance_types_mod):
    f = instance_types_mod.spot_fraction
    assert f("m6i.large", "us-east-1a") == f("m6i.large", "us-east-1a")
    values = {f(n, z) for n in instance_types_mod.CURATED for z in instance_types_mod.ZONES}
    assert min(values) >= 0.30 and max(values) <= 0.45 and len(values) > 100


# ------------------------------------------------------------------------------------------ validator


def test_validate_cli_ok():
    r = subprocess.run(
        [sys.executable, str(SANDBOX / "instance_types.py"), "validate"],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    assert "55 instance types" in r.stdout


def run_validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SANDBOX / "instance_types.py"), "validate", "--out", str(path)],
        check=False,
        capture_output=True,
        text=True,
    )


def test_rejects_old_offering_format(tmp_path, types):
    # kwok/examples/instance_types.json style: decodes silently in Go into offerings without zones.
    doc = copy.deepcopy(types[:1])
    doc[0]["offerings"] = [{"capacityType": "spot", "zone": "us-east-1a", "price": 0.03, "available": True}]
    r = run_validate(write(tmp_path, doc))
    assert r.returncode != 0
    assert "unknown key 'capacityType'" in r.stderr
    assert "unknown key 'zone'" in r.stderr
    assert "use the exact Go field name 'Price'" in r.stderr
    assert "missing 'Requirements'" in r.stderr
    assert "zero instance types" in r.stderr


def test_rejects_missing_zone(tmp_path, types, instance_types_mod):
    doc = copy.deepcopy(types[:2])
    off = doc[1]["offerings"][3]
    off["Requirements"] = [r for r in off["Requirements"] if r["key"] != "topology.kubernetes.io/zone"]
    r = run_validate(write(tmp_path, doc))
    assert r.returncode != 0
    assert "offerings[3]" in r.stderr and "topology.kubernetes.io/zone" in r.stderr
    with pytest.raises(instance_types_mod.ValidationError, match=r"topology\.kubernetes\.io/zone"):
        instance_types_mod.validate(tmp_path / "instance-types.json")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t["offerings"][0].pop("Price"), "missing 'Price'"),
        (lambda t: t["offerings"][0].update(Price=0), "Price must be a positive number"),
        (lambda t: t["offerings"][0].update(Price="0.1"), "Price must be a positive number"),
        (lambda t: t["offerings"][0]["Requirements"][0].update(values=["preemptible"]), "karpenter.sh/capacity-type"),
        (lambda t: t["offerings"][0]["Requirements"][1].update(values=["us-east-1a", "us-east-1b"]), "zone"),
        (lambda t: t["resources"].update(memory="8 GiB"), "not a Kubernetes quantity"),
        (lambda t: t["resources"].pop("cpu"), "missing 'cpu'"),
        (lambda t: t.update(arch="amd64"), "unknown key 'arch'"),
        (lambda t: t.update(architecture="x86_64"), "architecture 'x86_64'"),
        (lambda t: t["offerings"][0]["Requirements"][0].update(operator="Equals"), "operator 'Equals'"),
        (lambda t: t["offerings"][0]["Requirements"].append({"key": "bad key!", "operator": "Exists"}), "label key"),
        (lambda t: t["offerings"][0].update(Available="yes"), "Available must be a boolean"),
        (lambda t: t.update(offerings=[]), "non-empty array"),
    ],
)
def test_rejects_malformed(tmp_path, types, instance_types_mod, mutate, message):
    doc = copy.deepcopy(types[:1])
    mutate(doc[0])
    errors = instance_types_mod.check(doc)
    assert any(message in e for e in errors), errors


def test_rejects_non_array_and_bad_json(tmp_path, instance_types_mod):
    assert instance_types_mod.check({"name": "m5.large"})
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(instance_types_mod.ValidationError, match="cannot load"):
        instance_types_mod.validate(bad)


def test_accepts_known_go_fields(types, instance_types_mod):
    doc = copy.deepcopy(types[:1])
    doc[0]["offerings"][0]["CapacityOverride"] = {"pods": "58"}
    doc[0]["offerings"][0]["OverheadOverride"] = {"KubeReserved": {"cpu": "200m"}}
    assert instance_types_mod.check(doc) == []
