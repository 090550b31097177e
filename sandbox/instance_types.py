#!/usr/bin/env python3
"""Curated AWS-like instance types, written for Karpenter's KWOK provider (sigs.k8s.io/karpenter v1.14.1).

The sandbox no longer runs the KWOK provider (Karpenter's AWS provider now sees the emulator's full catalogue);
what is still used is the curated price table (``load_prices``) and the deterministic spot ratio
(``spot_fraction``), by the AWS emulator's price layer (sandbox/ec2_emulation.py). The KWOK JSON file format and
its validator below are kept only until that use moves into the emulator.

The KWOK provider reads ``INSTANCE_TYPES_FILE_PATH``: a JSON array of ``InstanceTypeOptions``
(``kwok/cloudprovider/helpers.go``)::

    {"name": str, "architecture": str, "operatingSystems": [str], "resources": {name: quantity},
     "offerings": [{"Price": float, "Available": bool, "ReservationCapacity": int,
                    "Requirements": [{"key": str, "operator": str, "values": [str]}]}]}

Offerings are ``KWOKOffering`` = embedded ``cloudprovider.Offering`` (Go field names, no JSON tags) plus a
``Requirements []corev1.NodeSelectorRequirement`` that shadows the embedded one. Zones and capacity types come only
from the offering requirements ``topology.kubernetes.io/zone`` and ``karpenter.sh/capacity-type``. Every offering
requirement key is inserted into ``v1.WellKnownLabels``; ``addInstanceLabels`` (``cloudprovider.go``) copies every
single-valued ``In`` requirement of the chosen offering onto the Node as a label. So the AWS labels below
(``karpenter.k8s.aws/instance-*``, ``topology.k8s.aws/zone-id``) become node labels and NodePool requirements on
them filter offerings. As in the AWS provider (``pkg/providers/instancetype/types.go``), GPU labels on non-GPU
types are ``DoesNotExist`` requirements: a NodePool asking for ``instance-gpu-count Exists`` must not match them
(a missing well-known key would be treated as compatible).

A malformed file is only *logged* by Karpenter ("failed constructing instance types") and the provider runs with
zero instance types; Go's decoder also ignores unknown keys (the old ``capacityType/zone/price`` format decodes
into offerings without zones). Hence ``validate()`` checks the file strictly.

Data sources (all offline at sandbox start):

* shapes -- moto's bundled ``moto/ec2/resources/instance_types.json`` (describe-instance-types output);
* zone ids -- moto's us-east-1 zone -> zone-id mapping (so labels agree with the moto emulator);
* on-demand prices -- ``sandbox/data/prices-us-east-1.json``, curated from the us-east-1 table of
  ``pkg/providers/pricing/zz_generated.pricing_aws.go`` in ``github.com/aws/karpenter-provider-aws@v1.14.1``
  (refresh with ``--refresh-prices PATH``);
* spot price -- deterministic: on-demand x (0.30 .. 0.45) picked from a SHA-256 of ``name/zone``, i.e. a 55-70 %
  discount, reproducible across runs.

Resources are pre-adjusted so that the KWOK provider's *allocatable* (capacity minus its fixed kube-reserved of
100m CPU / 10Mi memory) matches what the AWS provider computes for an AL2023 node with default settings:

* ``pods``: ENI-limited max pods of the default network card, ``ENIs * (IPv4 per ENI - 1) + 2``
  (``ENILimitedPods``, reservedENIs = 0);
* ``memory`` (Mi): ``MiB`` (minus 64 MiB CMA on Graviton) minus the 7.5 % VM overhead
  (``VM_MEMORY_OVERHEAD_PERCENT`` default 0.075, rounded up), minus EKS kube-reserved ``11 * pods + 255`` Mi,
  minus the hard eviction threshold 100Mi, plus back the 10Mi KWOK subtracts itself;
* ``ephemeral-storage``: the 20Gi default root volume minus 1Gi kube-reserved and the 10 % nodefs eviction
  threshold (2Gi) = 17Gi;
* ``cpu``: the vCPU count unchanged (KWOK reserves a fixed 100m; EKS would reserve 70m..~310m);
* ``nvidia.com/gpu``: the NVIDIA GPU count, for GPU types.

The ``karpenter.k8s.aws/instance-cpu``/``-memory`` labels carry the raw EC2 values (vCPUs, MiB), like the AWS provider.

CLI::

    python sandbox/instance_types.py generate [--out PATH] [--refresh-prices PATH/zz_generated.pricing_aws.go]
    python sandbox/instance_types.py validate [--out PATH]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data"
DEFAULT_OUT = DATA_DIR / "instance-types.json"
PRICES_FILE = DATA_DIR / "prices-us-east-1.json"

REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
CAPACITY_TYPES = ("on-demand", "spot")
VALID_CAPACITY_TYPES = ("on-demand", "spot", "reserved")
KARPENTER_AWS_VERSION = "v1.14.1"

SIZES = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge")
CURATED: tuple[str, ...] = (
    # amd64, 6th generation Intel: large..8xlarge
    *(f"{fam}.{size}" for fam in ("c6i", "m6i", "r6i") for size in SIZES),
    # amd64, 7th generation Intel: large..12xlarge
    *(f"{fam}.{size}" for fam in ("c7i", "m7i", "r7i") for size in (*SIZES, "12xlarge")),
    # arm64 Graviton3: large..16xlarge
    *(f"{fam}.{size}" for fam in ("c7g", "m7g", "r7g") for size in (*SIZES, "16xlarge")),
    # NVIDIA GPUs
    "g5.xlarge",
    "g5.2xlarge",
    "g5.12xlarge",
    "p4d.24xlarge",
)

# sigs.k8s.io/karpenter v1.14.1 constants
LABEL_ZONE = "topology.kubernetes.io/zone"
LABEL_CAPACITY_TYPE = "karpenter.sh/capacity-type"
LABEL_ZONE_ID = "topology.k8s.aws/zone-id"
AWS = "karpenter.k8s.aws/"
GPU_LABELS = (
    AWS + "instance-gpu-name",
    AWS + "instance-gpu-manufacturer",
    AWS + "instance-gpu-count",
    AWS + "instance-gpu-memory",
)

# Overhead model (karpenter-provider-aws v1.14.1 pkg/providers/instancetype/types.go defaults)
VM_MEMORY_OVERHEAD_PERCENT = 0.075
GRAVITON_CMA_MIB = 64
EVICTION_HARD_MEMORY_MI = 100
KWOK_KUBE_RESERVED_MEMORY_MI = 10
EPHEMERAL_STORAGE = "17Gi"  # 20Gi root volume - 1Gi kube-reserved - 10 % nodefs.available
SPOT_MIN_FRACTION = 0.30
SPOT_MAX_FRACTION = 0.45

# Go encoding/json field names of KWOKOffering (embedded cloudprovider.Offering + shadowing Requirements).
OFFERING_REQUIRED_KEYS = ("Price", "Requirements")
OFFERING_KEYS = ("Price", "Available", "Requirements", "ReservationCapacity", "CapacityOverride", "OverheadOverride")
OVERHEAD_KEYS = ("KubeReserved", "SystemReserved", "EvictionThreshold")
INSTANCE_TYPE_KEYS = ("name", "offerings", "architecture", "operatingSystems", "resources")
REQUIREMENT_KEYS = ("key", "operator", "values")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "Gte", "Lte")
ARCHITECTURES = ("amd64", "arm64")
OPERATING_SYSTEMS = ("linux", "windows")

# ---------------------------------------------------------------------------------------------------- moto data


def moto_resource_dir() -> Path:
    """Directory of moto's bundled EC2 resources, without importing moto (importing it is slow)."""
    import importlib.util

    spec = importlib.util.find_spec("moto")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("moto is not installed in this Python environment (pip install 'moto[server]')")
    return Path(next(iter(spec.submodule_search_locations))) / "ec2" / "resources"


def _load_moto_json(relative: str) -> object:
    """Load ``moto/ec2/resources/<relative>.json`` (gzip-compressed ``.json.gz`` in moto >= 5.1)."""
    base = moto_resource_dir() / relative
    for path, opener in (
        (base.with_name(base.name + ".json.gz"), gzip.open),
        (base.with_name(base.name + ".json"), open),
    ):
        if path.exists():
            with opener(path, "rt") as fh:
                return json.load(fh)
    raise FileNotFoundError(f"moto resource {base}.json[.gz] not found")


def load_moto_shapes() -> dict[str, dict]:
    """describe-instance-types data keyed by instance type name."""
    return _load_moto_json("instance_types")


def moto_zone_offerings(region: str = REGION) -> dict[str, set[str]]:
    """Instance type -> zones where moto's describe_instance_type_offerings lists it."""
    offers: dict[str, set[str]] = {}
    for entry in _load_moto_json(f"instance_type_offerings/availability-zone/{region}"):
        offers.setdefault(entry["InstanceType"], set()).add(entry["Location"])
    return offers


def moto_zone_ids(region: str = REGION) -> dict[str, str]:
    """Zone name -> zone id as moto's EC2 backend reports it (describe_availability_zones)."""
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    return {z.name: z.zone_id for z in RegionsAndZonesBackend.zones[region]}


# ---------------------------------------------------------------------------------------------------- prices


def parse_go_pricing(path: str | Path, region: str = REGION) -> dict[str, float]:
    """Parse the ``"<region>": { "type": price, ... }`` block of zz_generated.pricing_aws.go."""
    text = Path(path).read_text()
    start = re.search(r'^\s*"' + re.escape(region) + r'":\s*\{', text, re.MULTILINE)
    if not start:
        raise ValueError(f"{path}: no {region!r} table found")
    depth, i = 1, start.end()
    while depth and i < len(text):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    block = text[start.end() : i - 1]
    prices = {m[1]: float(m[2]) for m in re.finditer(r'"([a-z0-9][a-z0-9.-]*)":\s*([0-9.]+)', block)}
    if not prices:
        raise ValueError(f"{path}: empty {region!r} table")
    return prices


def refresh_prices(go_file: str | Path, out: Path = PRICES_FILE) -> dict[str, float]:
    table = parse_go_pricing(go_file)
    missing = [n for n in CURATED if n not in table]
    if missing:
        raise ValueError(f"no us-east-1 on-demand price for {missing} in {go_file}")
    header = re.search(r"generated at (\S+) for", Path(go_file).read_text())
    doc = {
        "source": f"github.com/aws/karpenter-provider-aws@{KARPENTER_AWS_VERSION}"
        "/pkg/providers/pricing/zz_generated.pricing_aws.go",
        "generatedAt": header[1] if header else None,
        "region": REGION,
        "currency": "USD/hour",
        "onDemand": {n: table[n] for n in sorted(CURATED)},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    return doc["onDemand"]


def load_prices(path: Path = PRICES_FILE) -> dict[str, float]:
    with path.open() as fh:
        return json.load(fh)["onDemand"]


def spot_fraction(name: str, zone: str) -> float:
    """Deterministic spot/on-demand ratio in [SPOT_MIN_FRACTION, SPOT_MAX_FRACTION]."""
    h = int.from_bytes(hashlib.sha256(f"{name}/{zone}".encode()).digest()[:4], "big") / 0xFFFFFFFF
    return round(SPOT_MIN_FRACTION + (SPOT_MAX_FRACTION - SPOT_MIN_FRACTION) * h, 4)


# ---------------------------------------------------------------------------------------------------- shapes


def architecture(shape: dict) -> str:
    archs = shape["ProcessorInfo"]["SupportedArchitectures"]
    for aws_arch, kube in (("x86_64", "amd64"), ("arm64", "arm64")):
        if aws_arch in archs:
            return kube
    raise ValueError(f"{shape['InstanceType']}: unsupported architectures {archs}")


def eni_max_pods(shape: dict) -> int:
    net = shape["NetworkInfo"]
    enis = net.get("MaximumNetworkInterfaces")
    cards = net.get("NetworkCards")
    if cards and "DefaultNetworkCardIndex" in net:
        card = next((c for c in cards if c.get("NetworkCardIndex") == net["DefaultNetworkCardIndex"]), None)
        if card and card.get("MaximumNetworkInterfaces"):
            enis = card["MaximumNetworkInterfaces"]
    return enis * (net["Ipv4AddressesPerInterface"] - 1) + 2


def kwok_memory_mi(shape: dict, pods: int) -> int:
    mib = shape["MemoryInfo"]["SizeInMiB"]
    if architecture(shape) == "arm64":
        mib -= GRAVITON_CMA_MIB
    capacity = mib - math.ceil(mib * VM_MEMORY_OVERHEAD_PERCENT)
    allocatable = capacity - (11 * pods + 255) - EVICTION_HARD_MEMORY_MI
    return allocatable + KWOK_KUBE_RESERVED_MEMORY_MI


def nvidia_gpus(shape: dict) -> list[dict]:
    return [g for g in shape.get("GpuInfo", {}).get("Gpus", []) if g.get("Manufacturer") == "NVIDIA"]


def kebab(s: str) -> str:
    return s.lower().replace(" ", "-")


def type_labels(name: str, shape: dict) -> list[dict]:
    """Single-valued requirements shared by all offerings of a type (they become node labels)."""
    family, size = name.split(".", 1)
    m = re.match(r"(^[a-z]+)(-[0-9]+tb)?([0-9]+).*\.", name)  # instanceTypeScheme in the AWS provider
    labels = {
        AWS + "instance-category": m[1],
        AWS + "instance-family": family,
        AWS + "instance-generation": m[3],
        AWS + "instance-size": size,
        AWS + "instance-cpu": str(shape["VCpuInfo"]["DefaultVCpus"]),
        AWS + "instance-memory": str(shape["MemoryInfo"]["SizeInMiB"]),
        AWS + "instance-hypervisor": shape.get("Hypervisor", "nitro"),
    }
    manufacturer = shape.get("ProcessorInfo", {}).get("Manufacturer")
    if manufacturer:
        labels[AWS + "instance-cpu-manufacturer"] = kebab(manufacturer)
    reqs = [{"key": k, "operator": "In", "values": [v]} for k, v in labels.items()]
    gpus = shape.get("GpuInfo", {}).get("Gpus", [])
    if len(gpus) == 1:
        g = gpus[0]
        values = (kebab(g["Name"]), kebab(g["Manufacturer"]), str(g["Count"]), str(g["MemoryInfo"]["SizeInMiB"]))
        reqs += [{"key": k, "operator": "In", "values": [v]} for k, v in zip(GPU_LABELS, values, strict=True)]
    else:
        reqs += [{"key": k, "operator": "DoesNotExist"} for k in GPU_LABELS]
    return reqs


def build_instance_type(
    name: str, shape: dict, on_demand: float, zone_ids: dict[str, str], zones: tuple[str, ...] = ZONES
) -> dict:
    pods = eni_max_pods(shape)
    resources = {
        "cpu": str(shape["VCpuInfo"]["DefaultVCpus"]),
        "memory": f"{kwok_memory_mi(shape, pods)}Mi",
        "pods": str(pods),
        "ephemeral-storage": EPHEMERAL_STORAGE,
    }
    gpu_count = sum(g["Count"] for g in nvidia_gpus(shape))
    if gpu_count:
        resources["nvidia.com/gpu"] = str(gpu_count)
    common = type_labels(name, shape)
    offerings = []
    usage = shape.get("SupportedUsageClasses", CAPACITY_TYPES)
    for zone in zones:
        for capacity_type in (c for c in CAPACITY_TYPES if c in usage):
            price = on_demand if capacity_type == "on-demand" else round(on_demand * spot_fraction(name, zone), 6)
            offerings.append(
                {
                    "Price": price,
                    "Available": True,
                    "ReservationCapacity": 0,
                    "Requirements": [
                        {"key": LABEL_CAPACITY_TYPE, "operator": "In", "values": [capacity_type]},
                        {"key": LABEL_ZONE, "operator": "In", "values": [zone]},
                        {"key": LABEL_ZONE_ID, "operator": "In", "values": [zone_ids[zone]]},
                        *common,
                    ],
                }
            )
    return {
        "name": name,
        "offerings": offerings,
        "architecture": architecture(shape),
        "operatingSystems": ["linux"],
        "resources": resources,
    }


def generate(out: Path = DEFAULT_OUT, prices: dict[str, float] | None = None) -> list[dict]:
    shapes = load_moto_shapes()
    prices = load_prices() if prices is None else prices
    zone_ids = moto_zone_ids()
    missing = [n for n in CURATED if n not in shapes]
    if missing:
        raise ValueError(f"moto's instance_types.json lacks {missing}")
    offers = moto_zone_offerings()
    types = []
    for name in CURATED:
        zones = tuple(z for z in ZONES if z in offers.get(name, ZONES))
        if not zones:
            raise ValueError(f"moto offers {name} in none of {ZONES}")
        types.append(build_instance_type(name, shapes[name], prices[name], zone_ids, zones))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dumps(types))
    return types


def dumps(types: list[dict]) -> str:
    """Stable, diff-friendly JSON: one offering per line."""

    def one(v: object) -> str:
        return json.dumps(v, separators=(", ", ": "))

    lines = ["["]
    for i, t in enumerate(types):
        head = ", ".join(f"{one(k)}: {one(v)}" for k, v in t.items() if k != "offerings")
        offs = ",\n".join(f"   {one(o)}" for o in t["offerings"])
        sep = "," if i < len(types) - 1 else ""
        lines.append(f' {{{head},\n  "offerings": [\n{offs}\n  ]}}{sep}')
    lines.append("]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- validation

_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class ValidationError(Exception):
    pass


def is_quantity(v: object) -> bool:
    """resource.MustParse-compatible string (Kubernetes quantities also decode from JSON numbers)."""
    if isinstance(v, bool):
        return False
    if isinstance(v, int | float):
        return True
    return isinstance(v, str) and bool(_QUANTITY.match(v))


def _label_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return bool(_LABEL_NAME.match(name))


def _check_keys(obj: object, allowed: tuple[str, ...], where: str, errors: list[str]) -> bool:
    if not isinstance(obj, dict):
        errors.append(f"{where}: expected an object, got {type(obj).__name__}")
        return False
    for k in obj:
        if k not in allowed:
            hint = next((a for a in allowed if a.lower() == k.lower()), None)
            why = f" (use the exact Go field name {hint!r})" if hint else ""
            errors.append(f"{where}: unknown key {k!r}{why}; allowed: {', '.join(allowed)}")
    return True


def _check_resource_list(obj: object, where: str, errors: list[str]) -> None:
    if not isinstance(obj, dict):
        errors.append(f"{where}: expected an object of resource quantities")
        return
    for k, v in obj.items():
        if not is_quantity(v):
            errors.append(f"{where}.{k}: {v!r} is not a Kubernetes quantity")


def _check_requirement(req: object, where: str, errors: list[str]) -> None:
    if not _check_keys(req, REQUIREMENT_KEYS, where, errors):
        return
    key, op, values = req.get("key"), req.get("operator"), req.get("values", [])
    if not isinstance(key, str) or not _label_key_ok(key):
        errors.append(f"{where}: invalid or missing label key {key!r}")
    if op not in OPERATORS:
        errors.append(f"{where}: operator {op!r} is not one of {', '.join(OPERATORS)}")
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        errors.append(f"{where}: values must be a list of strings")
        return
    if op in ("In", "NotIn") and not values:
        errors.append(f"{where}: operator {op} needs at least one value")
    if op in ("Exists", "DoesNotExist") and values:
        errors.append(f"{where}: operator {op} takes no values")
    if op in ("Gt", "Lt", "Gte", "Lte") and (len(values) != 1 or not re.fullmatch(r"-?\d+", values[0])):
        errors.append(f"{where}: operator {op} needs exactly one integer value")
    for v in values:
        if not _LABEL_VALUE.match(v):
            errors.append(f"{where}: {v!r} is not a valid label value")


def _single_in(reqs: list, key: str) -> list[str] | None:
    found = [r for r in reqs if isinstance(r, dict) and r.get("key") == key]
    if len(found) != 1 or found[0].get("operator") != "In":
        return None
    return found[0].get("values")


def check(doc: object) -> list[str]:
    """Return a list of problems (empty when the document matches []InstanceTypeOptions strictly)."""
    errors: list[str] = []
    if not isinstance(doc, list) or not doc:
        return ["top level: expected a non-empty JSON array of instance types"]
    seen: set[str] = set()
    for i, it in enumerate(doc):
        where = f"[{i}]"
        if not _check_keys(it, INSTANCE_TYPE_KEYS, where, errors):
            continue
        name = it.get("name")
        if not isinstance(name, str) or not name:
            errors.append(f"{where}: missing 'name'")
        else:
            where = f"[{i}] {name}"
            if name in seen:
                errors.append(f"{where}: duplicate name")
            seen.add(name)
        if it.get("architecture") not in ARCHITECTURES:
            errors.append(f"{where}: architecture {it.get('architecture')!r} not in {ARCHITECTURES}")
        oses = it.get("operatingSystems")
        if not isinstance(oses, list) or not oses or any(o not in OPERATING_SYSTEMS for o in oses):
            errors.append(f"{where}: operatingSystems must be a non-empty subset of {OPERATING_SYSTEMS}")
        resources = it.get("resources")
        _check_resource_list(resources, f"{where}.resources", errors)
        if isinstance(resources, dict):
            for r in ("cpu", "memory"):
                if r not in resources:
                    errors.append(f"{where}.resources: missing {r!r}")
        offerings = it.get("offerings")
        if not isinstance(offerings, list) or not offerings:
            errors.append(f"{where}: 'offerings' must be a non-empty array")
            continue
        for j, off in enumerate(offerings):
            ow = f"{where}.offerings[{j}]"
            if not _check_keys(off, OFFERING_KEYS, ow, errors):
                continue
            for k in OFFERING_REQUIRED_KEYS:
                if k not in off:
                    errors.append(f"{ow}: missing {k!r}")
            price = off.get("Price")
            if "Price" in off and (isinstance(price, bool) or not isinstance(price, int | float) or price <= 0):
                errors.append(f"{ow}: Price must be a positive number, got {price!r}")
            if "Available" in off and not isinstance(off["Available"], bool):
                errors.append(f"{ow}: Available must be a boolean")
            rc = off.get("ReservationCapacity", 0)
            if isinstance(rc, bool) or not isinstance(rc, int) or rc < 0:
                errors.append(f"{ow}: ReservationCapacity must be a non-negative integer")
            if "CapacityOverride" in off:
                _check_resource_list(off["CapacityOverride"], f"{ow}.CapacityOverride", errors)
            if "OverheadOverride" in off and _check_keys(
                off["OverheadOverride"], OVERHEAD_KEYS, f"{ow}.OverheadOverride", errors
            ):
                for k, v in off["OverheadOverride"].items():
                    _check_resource_list(v, f"{ow}.OverheadOverride.{k}", errors)
            reqs = off.get("Requirements")
            if "Requirements" not in off:
                continue
            if not isinstance(reqs, list):
                errors.append(f"{ow}: Requirements must be an array")
                continue
            keys = [r.get("key") for r in reqs if isinstance(r, dict)]
            for dup in sorted({k for k in keys if keys.count(k) > 1 and isinstance(k, str)}):
                errors.append(f"{ow}: duplicate requirement key {dup!r}")
            for k, req in enumerate(reqs):
                _check_requirement(req, f"{ow}.Requirements[{k}]", errors)
            zone = _single_in(reqs, LABEL_ZONE)
            if not zone or len(zone) != 1:
                errors.append(f"{ow}: needs exactly one {LABEL_ZONE} requirement 'In' with one value")
            ct = _single_in(reqs, LABEL_CAPACITY_TYPE)
            if not ct or len(ct) != 1 or ct[0] not in VALID_CAPACITY_TYPES:
                errors.append(f"{ow}: needs one {LABEL_CAPACITY_TYPE} 'In' with one of {VALID_CAPACITY_TYPES}")
            elif ct[0] == "reserved" and not rc:
                errors.append(f"{ow}: a reserved offering needs ReservationCapacity > 0")
    return errors


def validate(path: str | Path = DEFAULT_OUT) -> list[dict]:
    """Load and strictly check an instance-types file; raise ValidationError listing every problem."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{path}: cannot load: {exc}") from exc
    errors = check(doc)
    if errors:
        shown = "\n  ".join(errors[:50])
        more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
        why = "Karpenter runs with zero instance types on a decode error and silently drops unknown keys"
        raise ValidationError(f"{path}: {len(errors)} problem(s) ({why}):\n  {shown}{more}")
    return doc


# ---------------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=("generate", "validate"))
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"instance-types file (default {DEFAULT_OUT})")
    p.add_argument(
        "--refresh-prices",
        metavar="GO_FILE",
        help="re-read on-demand prices from zz_generated.pricing_aws.go and rewrite " + str(PRICES_FILE),
    )
    args = p.parse_args(argv)
    if args.command == "generate":
        prices = refresh_prices(args.refresh_prices) if args.refresh_prices else None
        types = generate(args.out, prices)
    try:
        types = validate(args.out)
    except ValidationError as exc:
        print(f"instance_types: {exc}", file=sys.stderr)
        return 1
    zones = sorted(
        {z for t in types for o in t["offerings"] for z in (_single_in(o["Requirements"], LABEL_ZONE) or [])}
    )
    print(f"{args.out}: {len(types)} instance types, zones {', '.join(zones)}: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
