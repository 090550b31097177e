"""EC2 behaviour that moto 5.2.5 lacks and Karpenter's AWS provider needs: instant fleets, ICE, spot prices.

Installed into the moto of this process by ``install()`` (aws_emulator.py does so before it starts the server);
every patch wraps or replaces one method at the narrowest point and is idempotent.

**CreateFleet, ``Type=instant``** (``moto/ec2/models/fleets.py``). moto launches every fleet through
``run_instances``/``request_spot_instances`` with only ``ImageId``, ``InstanceType``, ``KeyName``, ``UserData`` and
``SubnetId`` of the merged template data and override: the security groups of ``NetworkInterfaces[].Groups`` or
``SecurityGroupIds`` (on-demand instances get none, spot ones the ``default`` group), ``IamInstanceProfile``,
``MetadataOptions`` and ``BlockDeviceMappings`` (an 8 GiB ``/dev/sda1`` instead) are dropped; it takes the cheapest
override by ``MaxPrice`` (Karpenter sets none, so the first one), ignores ``Priority``, never reports ``Errors``,
answers one ``Instances`` entry per instance, and spot instances carry no ``SpotInstanceRequestId`` (which the
provider reads to tell spot from on-demand). ``FleetsBackend.create_fleet`` is wrapped: instant fleets become an
``InstantFleet`` (moto's ``Fleet`` records the fleet with a zero target; this class does the launching), other
fleet types keep moto's behaviour. Per capacity type it ranks the overrides of all launch template configs --
lowest ``Priority`` first when given, else the cheapest by the price tables below (Karpenter's on-demand
``lowest-price`` and spot ``price-capacity-optimized`` both put its offering price into ``Priority``) -- skips
pools refused by ``CAPACITY`` (``InsufficientInstanceCapacity``), by an override ``MaxPrice`` below the spot price
(``SpotMaxPriceTooLow``) or by a launch error moto raises (e.g. an unknown subnet or instance profile), each
reported in ``Errors`` as EC2 does for the pools it tried, and launches all units into the first pool left. Each
instance gets the launch template version's image (or the override's ``ImageId``), the primary interface's
security groups (or ``SecurityGroupIds``), the override's ``SubnetId`` (else the interface's), the
``IamInstanceProfile`` association, ``UserData``, ``MetadataOptions``, the EBS ``BlockDeviceMappings``,
``Monitoring``, ``EbsOptimized``, the request's ``instance``/``volume`` tags and the template's
``network-interface`` tags. Spot units get a real spot instance request (``sir-...``, tagged with the template's
``spot-instances-request`` tags) and ``InstanceLifecycle: spot``. ``FleetsResponse.create_fleet`` is wrapped to
add ``Errors``; ``Instances`` has one entry per pool with all its ``InstanceIds``. DryRun is moto's own check
(``DryRunOperation``, nothing launched). Not emulated: secondary/EFA network interfaces (moto has one ENI type),
``capacity-block``/``reserved`` capacity types (an ``InvalidParameterValue`` error), per-pool capacity limits.

**Capacity refusals**: ``CAPACITY`` holds rules (instance type, zone or every zone, ``on-demand``|``spot``);
aws_emulator.py serves them on ``/sandbox-api/capacity``. ``POST /moto-api/reset`` clears them (``on_moto_reset``
wraps ``MotoAPIBackend.reset``).

**DescribeSpotPriceHistory** (``moto/ec2/responses/spot_instances.py``): moto answers ``0.00001`` for every
offering, so Karpenter's cheapest spot offering is the largest instance. The response method is replaced: one
``Linux/UNIX`` record per instance type offered in a zone of the region (moto's offerings), priced
``on_demand_price(type) * spot_fraction(type, zone)`` -- a ratio in 0.30..0.45 taken from a SHA-256 of
``type/zone`` (a 55-70 % discount, the same on every run) -- at a ``Timestamp`` of the current hour. It honours
``InstanceTypes``, ``AvailabilityZone``, ``ProductDescriptions`` (``Linux/UNIX`` and ``Linux/UNIX (Amazon VPC)``
are priced; other platforms have no records), the filters ``instance-type``, ``availability-zone`` and
``product-description`` (``*``/``?`` wildcards), ``MaxResults`` (default 1000) and ``NextToken``.

**On-demand prices** (``on_demand_price``): AWS's us-east-1 Linux list price from the table the AWS provider
generates and the collection ships (plugins/module_utils/cost_data/prices_us_east_1.py; the sandbox's controller
prices on-demand offerings from its own copy of it). moto knows some types newer than that table: another size of
a listed family scales linearly with vCPUs (as AWS prices do); anything else is estimated from moto's shape as
``0.0361 $/vCPU + 0.0035 $/GiB`` (least squares over the c/m/r 6i, 7i x86 sizes), times 0.835 on arm64 (the
Graviton 7g/x86 ratio), plus 0.81 $ per NVIDIA GPU (g5). Against the full list that estimate is off by 21 % at the
median, so treat prices of the unlisted families as plausible, not real.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import inspect
import json
import math
import statistics
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError, InvalidFilter, InvalidNextToken, InvalidParameterValue
from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend
from moto.ec2.models.fleets import Fleet, FleetsBackend
from moto.ec2.models.instance_types import INSTANCE_TYPE_OFFERINGS, INSTANCE_TYPES
from moto.ec2.models.spot_requests import SpotFleetLaunchSpec, SpotInstanceRequest
from moto.ec2.responses.fleets import Fleets as FleetsResponse
from moto.ec2.responses.spot_instances import SpotInstances as SpotInstancesResponse
from moto.ec2.utils import (
    convert_tag_spec,
    filter_iam_instance_profiles,
    random_fleet_id,
    random_spot_request_id,
)
from moto.moto_api._internal.models import MotoAPIBackend

CAPACITY_TYPES = ("on-demand", "spot")
LINUX_PRODUCTS = ("Linux/UNIX", "Linux/UNIX (Amazon VPC)")
SPOT_PAGE_SIZE = 1000
_PATCH_MARK = "_karpenter_sandbox_ec2"
# moto's model metaclass files every model class under the service named by ``__module__.split(".")[1]``
# (``moto.<service>.models``); the subclasses below are EC2 models, so they say so.
_MOTO_EC2_MODULE = "moto.ec2.models.sandbox"

# Estimate for types outside the list price table (see the module docstring).
USD_PER_VCPU = 0.0361
USD_PER_GIB = 0.0035
ARM64_FACTOR = 0.835
USD_PER_NVIDIA_GPU = 0.81
# Spot price = on-demand x a fraction in this range, fixed per (instance type, zone).
SPOT_MIN_FRACTION = 0.30
SPOT_MAX_FRACTION = 0.45

# ---------------------------------------------------------------------------------------------------- prices


@cache
def _list_prices() -> dict[str, float]:
    """AWS's us-east-1 on-demand list prices of every instance type: the table Karpenter's AWS provider generates and
    the collection ships (plugins/module_utils/cost_data/prices_us_east_1.py). The controller prices on-demand
    offerings from its own copy of it (ISOLATED_VPC), so spot prices derived from it compare as on AWS: spot below
    on-demand for every type (an estimate above the list price made Karpenter drop spot for small types)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "plugins" / "module_utils" / "cost_data" / "prices_us_east_1.py"
    spec = importlib.util.spec_from_file_location("karpenter_sandbox_list_prices", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.ON_DEMAND)


def _vcpus(shape: dict) -> int:
    return int(shape["VCpuInfo"]["DefaultVCpus"])


@cache
def _family_price_per_vcpu() -> dict[str, float]:
    per_family: dict[str, list[float]] = {}
    for name, price in _list_prices().items():
        shape = INSTANCE_TYPES.get(name)
        if shape:
            per_family.setdefault(name.split(".")[0], []).append(price / _vcpus(shape))
    return {family: statistics.median(values) for family, values in per_family.items()}


def estimated_price(shape: dict) -> float:
    """The per-vCPU/GiB/GPU estimate of an on-demand price (USD/hour) for a describe-instance-types shape."""
    price = USD_PER_VCPU * _vcpus(shape) + USD_PER_GIB * shape["MemoryInfo"]["SizeInMiB"] / 1024
    if "x86_64" not in shape["ProcessorInfo"]["SupportedArchitectures"]:
        price *= ARM64_FACTOR
    gpus = sum(g.get("Count", 0) for g in shape.get("GpuInfo", {}).get("Gpus", []) if g.get("Manufacturer") == "NVIDIA")
    return price + USD_PER_NVIDIA_GPU * gpus


def on_demand_price(instance_type: str) -> float | None:
    """us-east-1 on-demand USD/hour: AWS's list price, else (types newer than the list) the family's per-vCPU list
    price times the vCPUs, else the estimate."""
    if instance_type in _list_prices():
        return _list_prices()[instance_type]
    shape = INSTANCE_TYPES.get(instance_type)
    if shape is None:
        return None
    per_vcpu = _family_price_per_vcpu().get(instance_type.split(".")[0])
    price = per_vcpu * _vcpus(shape) if per_vcpu is not None else estimated_price(shape)
    return round(price, 4)


def spot_fraction(instance_type: str, zone: str) -> float:
    """The spot/on-demand ratio of a (type, zone), in [SPOT_MIN_FRACTION, SPOT_MAX_FRACTION]: from a SHA-256 of
    ``type/zone``, so it differs between types and zones and never between runs."""
    h = int.from_bytes(hashlib.sha256(f"{instance_type}/{zone}".encode()).digest()[:4], "big") / 0xFFFFFFFF
    return round(SPOT_MIN_FRACTION + (SPOT_MAX_FRACTION - SPOT_MIN_FRACTION) * h, 4)


def spot_price(instance_type: str, zone: str) -> float | None:
    """Spot USD/hour: the on-demand price times the deterministic per (type, zone) ratio in 0.30..0.45."""
    od = on_demand_price(instance_type)
    return None if od is None else round(od * spot_fraction(instance_type, zone), 6)


def price(instance_type: str, zone: str | None, capacity_type: str) -> float | None:
    if capacity_type == "spot":
        return spot_price(instance_type, zone) if zone else None
    return on_demand_price(instance_type)


# ---------------------------------------------------------------------------------------------------- capacity


def known_zones() -> set[str]:
    return {z.name for zones in RegionsAndZonesBackend.zones.values() for z in zones}


class CapacityRules:
    """Thread-safe set of capacity refusals: (instance type, zone or None = every zone, capacity type)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[tuple[str, str | None, str]] = []

    @staticmethod
    def validate(rule: object) -> tuple[str, str | None, str]:
        """Check a JSON rule ``{"instanceType", "zone"?, "capacityType"}``; ValueError names what is wrong."""
        if not isinstance(rule, dict):
            raise ValueError("a rule is a JSON object {instanceType, zone?, capacityType}")
        unknown = set(rule) - {"instanceType", "zone", "capacityType"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        instance_type, zone, capacity_type = rule.get("instanceType"), rule.get("zone"), rule.get("capacityType")
        if instance_type not in INSTANCE_TYPES:
            raise ValueError(f"instanceType {instance_type!r} is not an EC2 instance type moto knows")
        if zone is not None and zone not in known_zones():
            raise ValueError(f"zone {zone!r} is not an availability zone moto knows")
        if capacity_type not in CAPACITY_TYPES:
            raise ValueError(f"capacityType must be one of {list(CAPACITY_TYPES)}, not {capacity_type!r}")
        return instance_type, zone, capacity_type

    def add(self, rule: dict) -> dict:
        key = self.validate(rule)
        with self._lock:
            if key not in self._rules:
                self._rules.append(key)
        return self._as_json(key)

    def remove(self, rule: dict) -> bool:
        key = self.validate(rule)
        with self._lock:
            if key in self._rules:
                self._rules.remove(key)
                return True
        return False

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict]:
        with self._lock:
            return [self._as_json(r) for r in self._rules]

    def refuses(self, instance_type: str, zone: str | None, capacity_type: str) -> bool:
        with self._lock:
            return any(
                t == instance_type and c == capacity_type and (z is None or z == zone) for t, z, c in self._rules
            )

    @staticmethod
    def _as_json(key: tuple[str, str | None, str]) -> dict:
        return {"instanceType": key[0], "zone": key[1], "capacityType": key[2]}


CAPACITY = CapacityRules()


def ice_message(instance_type: str, zone: str | None, capacity_type: str, region: str) -> str:
    """EC2's InsufficientInstanceCapacity messages (fleet spot pools have their own)."""
    if capacity_type == "spot":
        return "There is no Spot capacity available that matches your request."
    others = sorted(
        o["Location"]
        for o in INSTANCE_TYPE_OFFERINGS["availability-zone"].get(region, [])
        if o["InstanceType"] == instance_type and o["Location"] != zone
    )
    return (
        f"We currently do not have sufficient {instance_type} capacity in the Availability Zone you requested "
        f"({zone}). Our system will be working on provisioning additional capacity. You can currently get "
        f"{instance_type} capacity by not specifying an Availability Zone in your request or choosing "
        f"{', '.join(others)}."
    )


# ---------------------------------------------------------------------------------------------------- CreateFleet


@dataclass
class _Candidate:
    """One (launch template config, override) pool of a CreateFleet request."""

    order: int
    template_spec: dict[str, Any]  # as echoed back: LaunchTemplateId, LaunchTemplateName?, resolved Version
    version: Any  # moto LaunchTemplateVersion
    override: dict[str, Any]
    zone: str | None = None
    subnet_error: ServiceException | None = None

    @property
    def data(self) -> dict[str, Any]:
        return self.version.data

    @property
    def instance_type(self) -> str | None:
        return self.override.get("InstanceType") or self.data.get("InstanceType")

    @property
    def weight(self) -> float:
        return float(self.override.get("WeightedCapacity") or 1)

    @property
    def primary_nic(self) -> dict[str, Any] | None:
        nics = self.data.get("NetworkInterfaces") or []
        return next(
            (n for n in nics if int(n.get("DeviceIndex") or 0) == 0 and int(n.get("NetworkCardIndex") or 0) == 0),
            None,
        )

    @property
    def subnet_id(self) -> str | None:
        return self.override.get("SubnetId") or (self.primary_nic or {}).get("SubnetId")


@dataclass
class _Pool:
    candidate: _Candidate
    lifecycle: str
    instances: list[Any] = field(default_factory=list)


def _instance_of(launched: Any) -> Any:
    """The moto Instance of an on-demand instance or of a spot instance request."""
    return launched.instance if isinstance(launched, SpotInstanceRequest) else launched


class _FleetSpotRequest(SpotInstanceRequest):
    """A spot instance request whose instance is launched by the fleet (moto's would drop the template)."""

    __module__ = _MOTO_EC2_MODULE

    def __init__(self, launcher: Callable[[], Any], **kwargs: Any) -> None:
        self._launcher = launcher
        super().__init__(**kwargs)

    def launch_instance(self) -> Any:
        instance = self._launcher()
        instance.spot_instance_request_id = self.id  # DescribeInstances' SpotInstanceRequestId
        return instance


class InstantFleet(Fleet):
    """An EC2 fleet of ``Type=instant`` launched as EC2 does for Karpenter (see the module docstring)."""

    __module__ = _MOTO_EC2_MODULE

    def __init__(
        self,
        ec2_backend: Any,
        fleet_id: str,
        on_demand_options: dict[str, Any],
        spot_options: dict[str, Any],
        target_capacity_specification: dict[str, Any],
        launch_template_configs: list[dict[str, Any]],
        excess_capacity_termination_policy: str,
        replace_unhealthy_instances: bool,
        terminate_instances_with_expiration: bool,
        fleet_type: str,
        valid_from: datetime | None,
        valid_until: datetime | None,
        tag_specifications: list[dict[str, Any]],
    ):
        targets = self._targets(target_capacity_specification)
        candidates = self._candidates(ec2_backend, launch_template_configs)  # unknown template: API error
        # moto's constructor records the fleet (id, options, fleet tags, state) and launches nothing at zero.
        super().__init__(
            ec2_backend=ec2_backend,
            fleet_id=fleet_id,
            on_demand_options=on_demand_options,
            spot_options=spot_options,
            target_capacity_specification={"TotalTargetCapacity": 0},
            launch_template_configs=[],
            excess_capacity_termination_policy=excess_capacity_termination_policy,
            replace_unhealthy_instances=replace_unhealthy_instances,
            terminate_instances_with_expiration=terminate_instances_with_expiration,
            fleet_type=fleet_type,
            valid_from=valid_from,
            valid_until=valid_until,
            tag_specifications=tag_specifications,
        )
        self.target_capacity_specification = target_capacity_specification
        self.launch_template_configs = launch_template_configs
        self.target_capacity = int(target_capacity_specification.get("TotalTargetCapacity") or 0)
        self.errors: list[dict[str, Any]] = []
        self._pools: list[_Pool] = []
        request_tags = convert_tag_spec(tag_specifications or [])
        for lifecycle, units in targets.items():
            if units > 0:
                self._fulfil(lifecycle, units, candidates, request_tags)

    # -- request parsing

    @staticmethod
    def _targets(spec: dict[str, Any]) -> dict[str, int]:
        total = int(spec.get("TotalTargetCapacity") or 0)
        targets = {
            "on-demand": int(spec.get("OnDemandTargetCapacity") or 0),
            "spot": int(spec.get("SpotTargetCapacity") or 0),
        }
        default = spec.get("DefaultTargetCapacityType") or "on-demand"
        if default not in targets:
            raise InvalidParameterValue(
                f"DefaultTargetCapacityType {default!r} is not emulated by the sandbox (only on-demand and spot)"
            )
        targets[default] += max(0, total - sum(targets.values()))
        return targets

    @staticmethod
    def _candidates(backend: Any, configs: list[dict[str, Any]]) -> list[_Candidate]:
        candidates: list[_Candidate] = []
        for config in configs or []:
            spec = config.get("LaunchTemplateSpecification") or {}
            if spec.get("LaunchTemplateId"):
                template = backend.get_launch_template(spec["LaunchTemplateId"])
            elif spec.get("LaunchTemplateName"):
                template = backend.get_launch_template_by_name(spec["LaunchTemplateName"])
            else:
                raise EC2ClientError("MissingParameter", "LaunchTemplateId or LaunchTemplateName is required")
            version = template.get_version(spec.get("Version") or template.default_version_number)
            echoed = {**spec, "LaunchTemplateId": template.id, "Version": str(version.number)}
            for override in config.get("Overrides") or [{}]:
                candidate = _Candidate(len(candidates), echoed, version, dict(override))
                candidate.zone = override.get("AvailabilityZone") or (version.data.get("Placement") or {}).get(
                    "AvailabilityZone"
                )
                if candidate.subnet_id:
                    try:  # an instance lands in its subnet's zone
                        candidate.zone = backend.get_subnet(candidate.subnet_id).availability_zone
                    except ServiceException as exc:
                        candidate.subnet_error = exc
                candidates.append(candidate)
        return candidates

    # -- choosing and launching

    def _rank(self, candidate: _Candidate, lifecycle: str) -> tuple:
        priority = candidate.override.get("Priority")
        if priority is not None:
            return (0, float(priority), candidate.order)
        known = price(candidate.instance_type or "", candidate.zone, lifecycle)
        return (1, math.inf if known is None else known / candidate.weight, candidate.order)

    def _error(self, candidate: _Candidate, lifecycle: str, code: str, message: str) -> None:
        self.errors.append(
            {
                "LaunchTemplateAndOverrides": {
                    "LaunchTemplateSpecification": candidate.template_spec,
                    "Overrides": candidate.override,
                },
                "Lifecycle": lifecycle,
                "ErrorCode": code,
                "ErrorMessage": message,
            }
        )

    def _fulfil(self, lifecycle: str, units: int, candidates: list[_Candidate], request_tags: dict) -> None:
        region = self.ec2_backend.region_name
        for candidate in sorted(candidates, key=lambda c: self._rank(c, lifecycle)):
            instance_type = candidate.instance_type
            if instance_type and CAPACITY.refuses(instance_type, candidate.zone, lifecycle):
                message = ice_message(instance_type, candidate.zone, lifecycle, region)
                self._error(candidate, lifecycle, "InsufficientInstanceCapacity", message)
                continue
            max_price = candidate.override.get("MaxPrice")
            current = price(instance_type or "", candidate.zone, lifecycle)
            if lifecycle == "spot" and max_price and current is not None and float(max_price) < current:
                message = f"Your Spot request price of {max_price} is lower than the minimum required Spot request fulfillment price of {current}."
                self._error(candidate, lifecycle, "SpotMaxPriceTooLow", message)
                continue
            pool = _Pool(candidate, lifecycle)
            try:
                for _ in range(math.ceil(units / candidate.weight)):
                    pool.instances.append(self._launch_one(candidate, lifecycle, request_tags))
            except ServiceException as exc:
                self._error(candidate, lifecycle, exc.code, exc.message)
                if not pool.instances:
                    continue
            self._pools.append(pool)
            self._record(pool)
            return

    def _record(self, pool: _Pool) -> None:
        """Keep moto's bookkeeping (DescribeFleetInstances, capacity on termination) in step."""
        candidate, data = pool.candidate, pool.candidate.data
        spec = SpotFleetLaunchSpec(
            ebs_optimized=data.get("EbsOptimized"),
            group_set=[],
            iam_instance_profile=data.get("IamInstanceProfile"),
            image_id=candidate.override.get("ImageId") or data.get("ImageId"),
            instance_type=candidate.instance_type,
            key_name=data.get("KeyName"),
            monitoring=data.get("Monitoring"),
            spot_price=candidate.override.get("MaxPrice"),
            subnet_id=_instance_of(pool.instances[0]).subnet_id,
            tag_specifications={},
            user_data=data.get("UserData"),
            weighted_capacity=candidate.weight,
            launch_template_spec=candidate.template_spec,
            overrides=candidate.override or None,
        )
        self.launch_specs.append(spec)
        for request_or_instance in pool.instances:
            if pool.lifecycle == "spot":
                self.spot_requests.append(request_or_instance)
            else:
                self.on_demand_instances.append({"id": None, "instance": request_or_instance, "launch_spec": spec})
        added = candidate.weight * len(pool.instances)
        self.fulfilled_capacity += added
        if pool.lifecycle == "spot":
            self.fulfilled_spot_capacity += added
        else:
            self.fulfilled_on_demand_capacity += added

    def _security_groups(self, candidate: _Candidate) -> list[Any]:
        nic = candidate.primary_nic
        ids = (nic.get("Groups") if nic else None) or candidate.data.get("SecurityGroupIds") or []
        groups = []
        for group_id in ids:
            group = self.ec2_backend.get_security_group_from_id(group_id)
            if group is None:
                raise EC2ClientError("InvalidGroup.NotFound", f"The security group '{group_id}' does not exist")
            groups.append(group)
        return groups

    def _check_profile(self, profile: dict[str, Any]) -> None:
        try:
            filter_iam_instance_profiles(
                self.ec2_backend.account_id,
                partition=self.ec2_backend.partition,
                iam_instance_profile_arn=profile.get("Arn"),
                iam_instance_profile_name=profile.get("Name"),
            )
        except ServiceException as exc:
            value = profile.get("Arn") or profile.get("Name")
            field_name = "arn" if profile.get("Arn") else "name"
            raise EC2ClientError(
                "InvalidParameterValue",
                f"Value ({value}) for parameter iamInstanceProfile.{field_name} is invalid. {exc.message}",
            ) from exc

    def _launch_one(self, candidate: _Candidate, lifecycle: str, request_tags: dict) -> Any:
        """Launch one instance of ``candidate``; for spot, return its spot instance request."""
        backend, data = self.ec2_backend, candidate.data
        if candidate.subnet_error is not None:
            raise candidate.subnet_error
        image_id = candidate.override.get("ImageId") or data.get("ImageId")
        if not image_id:
            raise EC2ClientError("MissingParameter", "The request must contain the parameter ImageId")
        if not candidate.instance_type:
            raise EC2ClientError("MissingParameter", "The request must contain the parameter InstanceType")
        groups = self._security_groups(candidate)
        profile = data.get("IamInstanceProfile") or {}
        if profile:
            self._check_profile(profile)
        template_tags = convert_tag_spec(data.get("TagSpecifications") or [])
        nic = candidate.primary_nic or {}
        kwargs: dict[str, Any] = {
            "instance_type": candidate.instance_type,
            "is_instance_type_default": False,
            "region_name": backend.region_name,
            "placement": None if candidate.subnet_id else candidate.zone,
            "subnet_id": candidate.subnet_id,
            "key_name": data.get("KeyName"),
            "security_group_ids": groups,
            "associate_public_ip": nic.get("AssociatePublicIpAddress"),
            "tags": {"instance": request_tags.get("instance", {}), "volume": request_tags.get("volume", {})},
            "ebs_optimized": bool(data.get("EbsOptimized")),
            "monitoring_state": "enabled" if (data.get("Monitoring") or {}).get("Enabled") else "disabled",
            "metadata_options": data.get("MetadataOptions") or {},
            "launch_template": {
                "LaunchTemplateId": candidate.template_spec["LaunchTemplateId"],
                "Version": candidate.template_spec["Version"],
            },
            "disable_api_termination": bool(data.get("DisableApiTermination")),
            "disable_api_stop": bool(data.get("DisableApiStop")),
            "instance_initiated_shutdown_behavior": data.get("InstanceInitiatedShutdownBehavior"),
            "fleet_id": self.id,
        }
        if candidate.subnet_id:
            kwargs["nics"] = [{"DeviceIndex": 0, "DeleteOnTermination": nic.get("DeleteOnTermination", True)}]
        mappings = [m for m in data.get("BlockDeviceMappings") or [] if m.get("Ebs") is not None]
        if mappings:
            kwargs["block_device_mappings"] = mappings
        if lifecycle == "spot":
            kwargs["lifecycle"] = "spot"

        def launch() -> Any:
            instance = backend.run_instances(image_id, 1, data.get("UserData"), [], **kwargs).instances[0]
            if profile:
                backend.associate_iam_instance_profile(
                    instance_id=instance.id,
                    iam_instance_profile_name=profile.get("Name") if not profile.get("Arn") else None,
                    iam_instance_profile_arn=profile.get("Arn"),
                )
            for eni in instance.nics.values():
                eni.add_tags(template_tags.get("network-interface", {}))
            return instance

        if lifecycle != "spot":
            return launch()
        request = _FleetSpotRequest(
            launch,
            ec2_backend=backend,
            spot_request_id=random_spot_request_id(),
            price=candidate.override.get("MaxPrice"),
            image_id=image_id,
            spot_instance_type="one-time",
            valid_from=None,
            valid_until=None,
            launch_group=None,
            availability_zone_group=None,
            key_name=data.get("KeyName"),
            security_groups=[g.id for g in groups],
            user_data=data.get("UserData"),
            instance_type=candidate.instance_type,
            placement=candidate.zone,
            kernel_id=None,
            ramdisk_id=None,
            monitoring_enabled=kwargs["monitoring_state"] == "enabled",
            subnet_id=candidate.subnet_id,
            tags=template_tags,
            spot_fleet_id=None,
            instance_interruption_behaviour=(self.spot_options or {}).get("InstanceInterruptionBehavior"),
        )
        backend.spot_instance_requests[request.id] = request
        return request

    # -- response

    @property
    def instances(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """CreateFleet's ``Instances``: one entry per launched pool with all its instance ids."""
        out = []
        for pool in self._pools:
            ids = [_instance_of(x).id for x in pool.instances]
            entry: dict[str, Any] = {
                "LaunchTemplateAndOverrides": {
                    "LaunchTemplateSpecification": pool.candidate.template_spec,
                    "Overrides": pool.candidate.override,
                },
                "Lifecycle": pool.lifecycle,
                "InstanceIds": ids,
                "InstanceType": pool.candidate.instance_type,
            }
            platform = _instance_of(pool.instances[0]).platform
            if platform:
                entry["Platform"] = "Windows" if platform.lower() == "windows" else platform
            out.append(entry)
        return out


# ---------------------------------------------------------------------------------------------------- spot prices


def _matches(value: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def spot_price_records(
    region: str,
    instance_types: Iterable[str] = (),
    zone: str | None = None,
    product_descriptions: Iterable[str] = (),
    filters: dict[str, list[str]] | None = None,
    timestamp: datetime | None = None,
) -> list[dict[str, Any]]:
    """DescribeSpotPriceHistory records, sorted by (instance type, zone); see the module docstring."""
    filters = dict(filters or {})
    unsupported = set(filters) - {"instance-type", "availability-zone", "product-description"}
    if unsupported:
        raise InvalidFilter(sorted(unsupported)[0])
    requested = set(product_descriptions)
    patterns = filters.get("product-description")
    product = next(
        (
            p
            for p in LINUX_PRODUCTS
            if (not requested or p in requested) and (patterns is None or _matches(p, patterns))
        ),
        None,
    )
    if product is None:
        return []
    types = set(instance_types)
    when = timestamp or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    records = []
    for offer in sorted(
        INSTANCE_TYPE_OFFERINGS["availability-zone"].get(region, []), key=lambda o: (o["InstanceType"], o["Location"])
    ):
        name, location = offer["InstanceType"], offer["Location"]
        if types and name not in types:
            continue
        if zone and location != zone:
            continue
        if "instance-type" in filters and not _matches(name, filters["instance-type"]):
            continue
        if "availability-zone" in filters and not _matches(location, filters["availability-zone"]):
            continue
        value = spot_price(name, location)
        if value is None:
            continue
        records.append(
            {
                "AvailabilityZone": location,
                "InstanceType": name,
                "ProductDescription": product,
                "SpotPrice": f"{value:.6f}",
                "Timestamp": when,
            }
        )
    return records


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidNextToken(token) from None
    if not isinstance(offset, int) or offset < 0:
        raise InvalidNextToken(token)
    return offset


def _describe_spot_price_history(self: Any) -> ActionResult:
    """Replacement of moto's ``SpotInstances.describe_spot_price_history`` response method."""
    records = spot_price_records(
        self.region,
        instance_types=self._get_param("InstanceTypes", []) or [],
        zone=self._get_param("AvailabilityZone"),
        product_descriptions=self._get_param("ProductDescriptions", []) or [],
        filters=self._filters_from_querystring(),
    )
    size = self._get_int_param("MaxResults") or SPOT_PAGE_SIZE
    token = self._get_param("NextToken")
    start = _decode_token(token) if token else 0
    page = records[start : start + size]
    result: dict[str, Any] = {"SpotPriceHistory": page}
    if start + size < len(records):
        result["NextToken"] = _encode_token(start + size)
    return ActionResult(result)


# ---------------------------------------------------------------------------------------------------- install


def _mark(function: Callable, original: Callable) -> Callable:
    setattr(function, _PATCH_MARK, True)
    function.__wrapped__ = original  # type: ignore[attr-defined]
    return function


def _patched(cls: type, name: str) -> bool:
    return getattr(getattr(cls, name), _PATCH_MARK, False)


_RESET_HOOKS: list[Callable[[], None]] = [CAPACITY.clear]


def on_moto_reset(callback: Callable[[], None]) -> None:
    """Run ``callback`` whenever moto resets (``POST /moto-api/reset``), before the backends are rebuilt."""
    if callback not in _RESET_HOOKS:
        _RESET_HOOKS.append(callback)


def install() -> None:
    """Patch this process's moto (idempotent); see the module docstring."""
    if not _patched(FleetsBackend, "create_fleet"):
        original_create = FleetsBackend.create_fleet

        signature = inspect.signature(original_create)

        def create_fleet(self: Any, *args: Any, **kwargs: Any) -> Fleet:
            params = signature.bind(self, *args, **kwargs).arguments
            if params.get("fleet_type") != "instant":
                return original_create(self, *args, **kwargs)
            params.pop("self")
            fleet = InstantFleet(self, random_fleet_id(), **params)
            self.fleets[fleet.id] = fleet
            return fleet

        FleetsBackend.create_fleet = _mark(create_fleet, original_create)

    if not _patched(FleetsResponse, "create_fleet"):
        original_response = FleetsResponse.create_fleet

        def create_fleet_response(self: Any) -> ActionResult:
            action = original_response(self)
            fleet = self.ec2_backend.get_fleet(action.result["FleetId"])
            if isinstance(fleet, InstantFleet):
                action.result["Errors"] = fleet.errors
            return action

        FleetsResponse.create_fleet = _mark(create_fleet_response, original_response)

    if not _patched(SpotInstancesResponse, "describe_spot_price_history"):
        original_history = SpotInstancesResponse.describe_spot_price_history
        SpotInstancesResponse.describe_spot_price_history = _mark(_describe_spot_price_history, original_history)

    if not _patched(MotoAPIBackend, "reset"):
        original_reset = MotoAPIBackend.reset

        def reset(self: Any) -> None:
            for hook in list(_RESET_HOOKS):
                hook()
            original_reset(self)

        MotoAPIBackend.reset = _mark(reset, original_reset)
