#!/usr/bin/env python3
"""Loopback-only AWS emulator for the sandbox: moto in-process, with EKS AMIs seeded and EC2 fixed for Karpenter.

Runs ``moto.server.ThreadedMotoServer`` bound to 127.0.0.1 (never 0.0.0.0) with
``MOTO_IAM_LOAD_MANAGED_POLICIES=true`` (AWS managed policies such as ``AmazonEKSClusterPolicy`` exist only then).

moto 5.2.5 has none of the EKS-optimised AMI parameters and refuses ``put_parameter`` on ``/aws/...`` names
(``AccessDeniedException: No access to reserved parameter name``), so they are seeded in-process:

* ``SimpleSystemManagerBackend.__init__`` is wrapped so that every SSM backend (any account, any region, and again
  after ``POST /moto-api/reset``) gets ``moto.ssm.models.Parameter`` objects appended to its **private**
  ``_parameters`` (a ``ParameterDict``: name -> list of versions) for, per Kubernetes minor 1.30..1.36:

  - ``/aws/service/eks/optimized-ami/<minor>/amazon-linux-2023/{x86_64,arm64}/{standard,nvidia}/recommended/
    {image_id,image_name,release_version}``
  - ``/aws/service/bottlerocket/aws-k8s-<minor>[-nvidia]/{x86_64,arm64}/latest/{image_id,image_version}``

  and the same leaves under each release's pinned name (``.../amazon-eks-node-al2023-<arch>-<variant>-<minor>-
  v<release>/...``, ``.../aws-k8s-<minor>[-nvidia]/<arch>/<version>/...``), which ``al2023@v<release>`` and
  ``bottlerocket@<version>`` aliases read.

* ``EC2Backend.__init__`` is wrapped the same way to register those AMI ids in the backend's ``amis`` dict (as
  public ``available`` images), so ``describe_images``/``run_instances`` on a resolved id work.

AMI ids are deterministic (``ami-0`` + 16 hex digits of a SHA-256 of region and parameter path, plus the release
for releases after the base one, ``AMI_RELEASE``/``BOTTLEROCKET_VERSION``).

**AMI drift**: ``release_amis(release)`` (in-process) or ``POST /sandbox-api/ami-release {"release": "20261201"}``
(``publish_ami_release(endpoint, ...)``) registers the AMIs of a new release and appends a version to every
``recommended``/``latest`` parameter, in existing backends and in those created later; by default the previous
AMIs get a ``DeprecationTime``. The AWS provider caches those parameters for 24 h; its SSM invalidation
controller (every 30 min, and at start) drops entries whose AMI is deprecated -- or restart the controller.

**EC2 for Karpenter's AWS provider** (ec2_emulation.py, installed with the seeding): CreateFleet ``instant`` as EC2
launches it (launch template groups/subnet/profile/metadata/volumes, Priority/price order, ``Errors``),
capacity refusals, realistic DescribeSpotPriceHistory prices.

**Control API** on the emulator's own port (``ControlAPI``; Python helpers take the endpoint, loopback only):

* ``/sandbox-api/capacity`` -- ``GET`` rules, ``POST {"instanceType", "zone"?, "capacityType"}`` refuses that
  capacity (CreateFleet reports ``InsufficientInstanceCapacity``), ``DELETE`` clears (or removes the rule in the
  body): ``capacity_refusals``, ``refuse_capacity``, ``allow_capacity``, ``clear_capacity_refusals``.
* ``/sandbox-api/ami-release`` -- ``GET`` releases, ``POST`` publishes one: ``published_ami_releases``,
  ``publish_ami_release``.
* ``/sandbox-api/eks-create-delay`` -- ``GET``/``POST {"seconds": N}``: new EKS clusters stay ``CREATING`` for N
  seconds, as EKS's do (eks_emulation.py; default 0, moto's immediate ``ACTIVE``): ``set_eks_create_delay``.

``POST /moto-api/reset`` also clears the capacity rules and the published releases.

**Interruption messages**: ``send_interruption(endpoint, queue_name, kind, instance_ids, state=...)`` sends
EventBridge events (``interruption_events``) to an SQS queue by name, in the shapes the provider parses
(``pkg/controllers/interruption/messages``): ``spot-interruption``, ``rebalance-recommendation``,
``state-change`` (with a state), ``scheduled-change`` (AWS Health), ``capacity-reservation-interruption``.

CLI::

    python sandbox/aws_emulator.py --port 5055 [--pidfile F] [--ready-file F]
    python sandbox/aws_emulator.py interrupt KIND INSTANCE_ID... --queue NAME [--state S] [--endpoint URL | --ready-file F]

The first runs in the foreground until SIGTERM/SIGINT. Readiness (``READY <endpoint>`` on stdout and the JSON ready
file ``{"endpoint", "host", "port", "pid"}``) is announced only after the seeding is done and an SSM
``GetParameter`` over HTTP returned a seeded id. ``--port 0`` picks a free port (read it from the ready file).

Cost Explorer: ``seed_cost_explorer(endpoint, results)`` posts to moto's
``/moto-api/static/ce/cost-and-usage-results`` (loopback endpoints only); each queued result is returned by the next
``get_cost_and_usage`` call with new parameters.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus
from pathlib import Path

from procfiles import write_atomic, write_ready

# Must be set before moto is imported anywhere in this process.
os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"

HOST = "127.0.0.1"
DEFAULT_PORT = 5055
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
K8S_MINORS = tuple(f"1.{m}" for m in range(30, 37))
ARCHES = ("x86_64", "arm64")
AMI_RELEASE = "20260701"  # fictitious AMI build date used in names/versions
BOTTLEROCKET_VERSION = "1.42.0"
EKS_AMI_OWNER = "602401143452"
CAPACITY_PATH = "/sandbox-api/capacity"
AMI_RELEASE_PATH = "/sandbox-api/ami-release"
EKS_CREATE_DELAY_PATH = "/sandbox-api/eks-create-delay"
_PATCH_MARK = "_karpenter_sandbox_seeding"


def _ami_id(region: str, key: str) -> str:
    return "ami-0" + hashlib.sha256(f"{region}:{key}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AmiRelease:
    """One EKS AMI release: the AL2023 build date and the Bottlerocket version published together."""

    release: str
    bottlerocket_version: str
    deprecate_previous: bool = False
    published: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def as_json(self) -> dict:
        return {
            "release": self.release,
            "bottlerocketVersion": self.bottlerocket_version,
            "deprecatePrevious": self.deprecate_previous,
            "published": self.published.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


BASE_RELEASE = AmiRelease(AMI_RELEASE, BOTTLEROCKET_VERSION, published=datetime(2026, 7, 1, tzinfo=UTC))
_RELEASES: list[AmiRelease] = []  # published after BASE_RELEASE (release_amis), oldest first
_RELEASE_LOCK = threading.RLock()


def ami_releases() -> list[AmiRelease]:
    """BASE_RELEASE and every release published since (oldest first); the last one is "recommended"/"latest"."""
    with _RELEASE_LOCK:
        return [BASE_RELEASE, *_RELEASES]


def eks_ami_catalog(
    region: str, minors: tuple[str, ...] = K8S_MINORS, release: AmiRelease = BASE_RELEASE
) -> tuple[dict[str, str], list[dict]]:
    """Return (SSM parameter name -> value, AMI descriptions) of one release in one region.

    The parameters are the mutable ``recommended``/``latest`` ones and the pinned ones of this release
    (``.../amazon-eks-node-al2023-<arch>-<variant>-<minor>-v<release>/...``, ``.../aws-k8s-<minor>/<arch>/<version>/...``)
    that ``al2023@v<release>`` / ``bottlerocket@<version>`` aliases resolve.
    """
    params: dict[str, str] = {}
    amis: list[dict] = []
    for minor in minors:
        for arch in ARCHES:
            for variant in ("standard", "nvidia"):
                root = f"/aws/service/eks/optimized-ami/{minor}/amazon-linux-2023/{arch}/{variant}"
                name = f"amazon-eks-node-al2023-{arch}-{variant}-{minor}-v{release.release}"
                key = f"{root}/recommended" + ("" if release == BASE_RELEASE else f"@{release.release}")
                ami = _ami_id(region, key)
                for base in (f"{root}/recommended", f"{root}/{name}"):
                    params[f"{base}/image_id"] = ami
                    params[f"{base}/image_name"] = name
                    params[f"{base}/release_version"] = f"{minor}.0-{release.release}"
                amis.append({"ami_id": ami, "name": name, "architecture": arch, "description": f"EKS {minor} AL2023"})
            for flavour in ("", "-nvidia"):
                root = f"/aws/service/bottlerocket/aws-k8s-{minor}{flavour}/{arch}"
                version = release.bottlerocket_version
                name = f"bottlerocket-aws-k8s-{minor}{flavour}-{arch}-v{version}"
                key = f"{root}/latest" + ("" if release == BASE_RELEASE else f"@{version}")
                ami = _ami_id(region, key)
                for base in (f"{root}/latest", f"{root}/{version}"):
                    params[f"{base}/image_id"] = ami
                    params[f"{base}/image_version"] = version
                amis.append({"ami_id": ami, "name": name, "architecture": arch, "description": "Bottlerocket"})
    return params, amis


def seed_ssm_backend(backend) -> int:
    """Put the EKS AMI parameters of every release into one moto SSM backend (private ``_parameters``).

    A ``recommended``/``latest`` parameter gets one version per release (a new release appends a version, as
    SSM does when AWS publishes an AMI); a pinned one exists from its release on. Idempotent: only versions
    missing from a parameter's history are appended. Returns the number of versions added.
    """
    from moto.ssm.models import Parameter

    histories: dict[str, list[tuple[str, AmiRelease]]] = {}
    for release in ami_releases():
        for name, value in eks_ami_catalog(backend.region_name, release=release)[0].items():
            history = histories.setdefault(name, [])
            if not history or history[-1][0] != value:
                history.append((value, release))
    added = 0
    for name, history in histories.items():
        versions = backend._parameters[name]  # ParameterDict is a defaultdict(list) keyed by name
        have = [p.value for p in versions]
        if have == [value for value, _ in history[: len(have)]]:
            missing = history[len(have) :]
        else:  # a history we did not write: only make the current value current
            missing = [] if have[-1] == history[-1][0] else history[-1:]
        for value, release in missing:
            versions.append(
                Parameter(
                    account_id=backend.account_id,
                    name=name,
                    value=value,
                    parameter_type="String",
                    description=None,
                    allowed_pattern=None,
                    keyid=None,
                    last_modified_date=release.published,
                    version=len(versions) + 1,
                    data_type="aws:ec2:image" if name.endswith("/image_id") else "text",
                )
            )
            added += 1
    return added


def seed_ec2_backend(backend) -> int:
    """Register the AMIs of every release as public images in one moto EC2 backend (its ``amis`` dict).

    A release published with ``deprecate_previous`` sets ``DeprecationTime`` on the previous release's AMIs.
    Idempotent; returns the number of AMIs added.
    """
    from moto.ec2.models.amis import Ami

    added = 0
    previous: list[str] = []
    for release in ami_releases():
        _, amis = eks_ami_catalog(backend.region_name, release=release)
        for a in amis:
            if a["ami_id"] in backend.amis:
                continue
            backend.amis[a["ami_id"]] = Ami(
                backend,
                ami_id=a["ami_id"],
                name=a["name"],
                description=a["description"],
                owner_id=EKS_AMI_OWNER,
                owner_alias="amazon",
                public=True,
                virtualization_type="hvm",
                architecture=a["architecture"],
                hypervisor="xen",
                root_device_type="ebs",
                root_device_name="/dev/xvda",
                region_name=f"{backend.region_name}a",
                creation_date=release.published,
            )
            added += 1
        if release.deprecate_previous:
            for ami_id in previous:
                # moto's Ami has no deprecation; DescribeImages serializes this attribute as DeprecationTime
                backend.amis[ami_id].deprecation_time = release.published.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        previous = [a["ami_id"] for a in amis]
    return added


def _wrap_init(cls, seeder) -> None:
    original = cls.__init__
    if getattr(original, _PATCH_MARK, False):
        return

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        seeder(self)

    setattr(__init__, _PATCH_MARK, True)
    __init__.__wrapped__ = original
    cls.__init__ = __init__


def reset_ami_releases() -> None:
    """Forget the releases published since BASE_RELEASE (moto's reset does this before rebuilding backends)."""
    with _RELEASE_LOCK:
        _RELEASES.clear()


def install_seeding() -> None:
    """Make every SSM/EC2 backend created from now on (including after a moto reset) carry the EKS AMIs, and
    install the EC2 emulation (ec2_emulation.py: CreateFleet, capacity refusals, spot prices)."""
    import ec2_emulation
    from moto.ec2.models import EC2Backend
    from moto.ssm.models import SimpleSystemManagerBackend

    _wrap_init(SimpleSystemManagerBackend, seed_ssm_backend)
    _wrap_init(EC2Backend, seed_ec2_backend)
    import eks_emulation

    ec2_emulation.install()
    ec2_emulation.on_moto_reset(reset_ami_releases)
    eks_emulation.install()
    ec2_emulation.on_moto_reset(eks_emulation.CREATE_DELAY.clear)


def release_amis(release: str, bottlerocket_version: str | None = None, deprecate_previous: bool = True) -> AmiRelease:
    """Publish a new EKS AMI release in this process's moto (AMI drift).

    Registers new AMIs (same names with the new release/version, new ids) in every EC2 backend and appends a
    version to every ``recommended``/``latest`` SSM parameter of every SSM backend, now and in backends created
    later. ``release`` is an AL2023 build date ``YYYYMMDD`` later than the current one; ``bottlerocket_version``
    defaults to the current one with the patch number bumped. ``deprecate_previous`` marks the previous AMIs
    deprecated (the provider's SSM invalidation drops cached "latest" parameters whose AMI is deprecated).
    """
    from moto.core.base_backend import backend_lock
    from moto.ec2.models import ec2_backends
    from moto.ssm.models import ssm_backends

    if not re.fullmatch(r"\d{8}", str(release)):
        raise ValueError(f"release must be an AL2023 build date YYYYMMDD, not {release!r}")
    with backend_lock, _RELEASE_LOCK:  # no backend is being created (and seeded) meanwhile
        current = ami_releases()[-1]
        if release <= current.release:
            raise ValueError(f"release {release} is not later than the current release {current.release}")
        if bottlerocket_version is None:
            major, minor, patch = current.bottlerocket_version.split(".")
            bottlerocket_version = f"{major}.{minor}.{int(patch) + 1}"
        if not re.fullmatch(r"\d+\.\d+\.\d+", str(bottlerocket_version)):
            raise ValueError(f"bottlerocketVersion must be MAJOR.MINOR.PATCH, not {bottlerocket_version!r}")
        if any(r.bottlerocket_version == bottlerocket_version for r in ami_releases()):
            raise ValueError(f"Bottlerocket {bottlerocket_version} was already released")
        published = AmiRelease(release, bottlerocket_version, bool(deprecate_previous))
        _RELEASES.append(published)
        for _, _, backend in list(ssm_backends.iter_backends()):
            seed_ssm_backend(backend)
        for _, _, backend in list(ec2_backends.iter_backends()):
            seed_ec2_backend(backend)
    return published


def seed_now(account_id: str = DEFAULT_ACCOUNT_ID, regions: tuple[str, ...] = (DEFAULT_REGION,)) -> int:
    """Create (and thereby seed) the backends of ``regions`` eagerly; also seeds already-existing ones."""
    from moto.ec2.models import ec2_backends
    from moto.ssm.models import ssm_backends

    install_seeding()
    count = 0
    for region in regions:
        ssm = ssm_backends[account_id][region]  # a new backend is seeded by the wrapped __init__
        seed_ssm_backend(ssm)  # an older one (created before install_seeding) is seeded here
        seed_ec2_backend(ec2_backends[account_id][region])
        count += sum(1 for name in eks_ami_catalog(region)[0] if name in ssm._parameters)
    return count


def _require_loopback(host: str) -> None:
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        if host == "localhost":
            return
    raise ValueError(f"refusing non-loopback address {host!r}: the sandbox emulator only talks to 127.0.0.1")


def _loopback_base(endpoint: str) -> str:
    url = urllib.parse.urlsplit(endpoint)
    _require_loopback(url.hostname or "")
    return f"{url.scheme}://{url.netloc}"


def _http(endpoint: str, method: str, path: str, body: object = None, timeout: float = 10) -> tuple[int, object]:
    """One JSON request to the emulator at a loopback ``endpoint`` (never through a proxy)."""
    req = urllib.request.Request(
        _loopback_base(endpoint) + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method=method,
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            detail = json.loads(raw).get("error", raw.decode(errors="replace"))
        except (ValueError, AttributeError):
            detail = raw.decode(errors="replace")
        if exc.code == 400:
            raise ValueError(f"{method} {path}: {detail}") from None
        raise RuntimeError(f"{method} {path}: HTTP {exc.code}: {detail}") from None


def seed_cost_explorer(endpoint: str, results: list[dict], account_id: str | None = None, timeout: float = 10) -> None:
    """Queue Cost Explorer ``get_cost_and_usage`` results in a running moto (loopback endpoints only).

    ``results`` is a list of GetCostAndUsage responses, e.g. ``[{"ResultsByTime": [...]}]``.
    """
    body: dict = {"results": results}
    if account_id:
        body["account_id"] = account_id
    status, _ = _http(endpoint, "POST", "/moto-api/static/ce/cost-and-usage-results", body, timeout)
    if status != 201:
        raise RuntimeError(f"moto refused the Cost Explorer seed: HTTP {status}")


# ---------------------------------------------------------------------------------------------------- control API
# Python helpers for /sandbox-api/... (served by ControlAPI below on the emulator's own port).


def capacity_refusals(endpoint: str, timeout: float = 10) -> list[dict]:
    """The capacity refusal rules ``[{"instanceType", "zone" (None = every zone), "capacityType"}]``."""
    return _http(endpoint, "GET", CAPACITY_PATH, timeout=timeout)[1]["rules"]


def refuse_capacity(
    endpoint: str, instance_type: str, capacity_type: str, zone: str | None = None, timeout: float = 10
) -> list[dict]:
    """Make CreateFleet refuse (type, zone or every zone, ``on-demand``|``spot``) with InsufficientInstanceCapacity.

    Returns all rules now in force."""
    rule = {"instanceType": instance_type, "zone": zone, "capacityType": capacity_type}
    return _http(endpoint, "POST", CAPACITY_PATH, rule, timeout)[1]["rules"]


def allow_capacity(
    endpoint: str, instance_type: str, capacity_type: str, zone: str | None = None, timeout: float = 10
) -> list[dict]:
    """Remove one refusal rule (exactly as it was added); returns the rules left."""
    rule = {"instanceType": instance_type, "zone": zone, "capacityType": capacity_type}
    return _http(endpoint, "DELETE", CAPACITY_PATH, rule, timeout)[1]["rules"]


def clear_capacity_refusals(endpoint: str, timeout: float = 10) -> None:
    """Remove every refusal rule: all capacity is available again."""
    _http(endpoint, "DELETE", CAPACITY_PATH, timeout=timeout)


def set_eks_create_delay(endpoint: str, seconds: float, timeout: float = 10) -> float:
    """EKS clusters created from now on stay CREATING for ``seconds`` (eks_emulation.py); returns the value set."""
    status, payload = _http(endpoint, "POST", EKS_CREATE_DELAY_PATH, {"seconds": seconds}, timeout)
    if status != 200:
        raise RuntimeError(f"setting the EKS create delay failed: {status} {payload}")
    return payload["seconds"]


def publish_ami_release(
    endpoint: str,
    release: str,
    bottlerocket_version: str | None = None,
    deprecate_previous: bool = True,
    timeout: float = 60,
) -> dict:
    """Publish a new EKS AMI release in a running emulator (see ``release_amis``); returns it as JSON."""
    body: dict = {"release": release, "deprecatePrevious": deprecate_previous}
    if bottlerocket_version:
        body["bottlerocketVersion"] = bottlerocket_version
    return _http(endpoint, "POST", AMI_RELEASE_PATH, body, timeout)[1]["release"]


def published_ami_releases(endpoint: str, timeout: float = 10) -> list[dict]:
    """The base release and every release published since, oldest first."""
    return _http(endpoint, "GET", AMI_RELEASE_PATH, timeout=timeout)[1]["releases"]


# ---------------------------------------------------------------------------------------------------- interruptions

# kind -> (EventBridge source, detail-type) as the provider's parsers (pkg/controllers/interruption/messages) key them
INTERRUPTION_KINDS = {
    "spot-interruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "rebalance-recommendation": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "state-change": ("aws.ec2", "EC2 Instance State-change Notification"),
    "scheduled-change": ("aws.health", "AWS Health Event"),
    "capacity-reservation-interruption": ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
}
INSTANCE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down", "terminated")
INSTANCE_ACTIONS = ("terminate", "stop", "hibernate")


def interruption_events(
    kind: str,
    instance_ids: list[str],
    *,
    state: str | None = None,
    action: str = "terminate",
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT_ID,
    when: datetime | None = None,
) -> list[dict]:
    """EventBridge events (``version`` "0") as EC2/AWS Health deliver them to an interruption queue.

    One event per instance, except ``scheduled-change``: one AWS Health event listing every instance in
    ``affectedEntities``. ``state`` (``state-change`` only) is the instance state; ``action`` is the
    ``instance-action`` of ``spot-interruption``/``capacity-reservation-interruption``.
    """
    if kind not in INTERRUPTION_KINDS:
        raise ValueError(f"kind must be one of {sorted(INTERRUPTION_KINDS)}, not {kind!r}")
    if not instance_ids or not all(isinstance(i, str) and i.startswith("i-") for i in instance_ids):
        raise ValueError(f"instance ids must be EC2 instance ids (i-...), not {instance_ids!r}")
    if (kind == "state-change") != (state is not None):
        raise ValueError("state is required for state-change events and only for them")
    if state is not None and state not in INSTANCE_STATES:
        raise ValueError(f"state must be one of {list(INSTANCE_STATES)}, not {state!r}")
    if action not in INSTANCE_ACTIONS:
        raise ValueError(f"action must be one of {list(INSTANCE_ACTIONS)}, not {action!r}")
    when = (when or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    source, detail_type = INTERRUPTION_KINDS[kind]

    def event(resources: list[str], detail: dict) -> dict:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": account_id,
            "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": resources,
            "detail": detail,
        }

    if kind == "scheduled-change":
        code = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"
        start = when + timedelta(days=14)
        return [
            event(
                list(instance_ids),
                {
                    "eventArn": f"arn:aws:health:{region}::event/EC2/{code}/{code}_{uuid.uuid4().hex[:12]}",
                    "service": "EC2",
                    "eventTypeCode": code,
                    "eventTypeCategory": "scheduledChange",
                    "startTime": format_datetime(start, usegmt=True),
                    "endTime": format_datetime(start + timedelta(days=7), usegmt=True),
                    "eventDescription": [
                        {
                            "language": "en_US",
                            "latestDescription": "EC2 has detected degradation of the underlying hardware hosting "
                            "your Amazon EC2 instance. The instance is scheduled for retirement.",
                        }
                    ],
                    "affectedEntities": [{"entityValue": i} for i in instance_ids],
                },
            )
        ]
    events = []
    for instance_id in instance_ids:
        detail: dict = {"instance-id": instance_id}
        if kind in ("spot-interruption", "capacity-reservation-interruption"):
            detail["instance-action"] = action
        if kind == "state-change":
            detail["state"] = state
        events.append(event([f"arn:aws:ec2:{region}:{account_id}:instance/{instance_id}"], detail))
    return events


def send_interruption(
    endpoint: str,
    queue_name: str,
    kind: str,
    instance_ids: list[str],
    *,
    state: str | None = None,
    action: str = "terminate",
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> list[str]:
    """Send ``interruption_events(...)`` to the SQS queue named ``queue_name`` (the provider's
    ``INTERRUPTION_QUEUE``) of the emulator at a loopback ``endpoint``; returns the SQS message ids."""
    import boto3

    base = _loopback_base(endpoint)
    sqs = boto3.client(
        "sqs", endpoint_url=base, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    events = interruption_events(kind, instance_ids, state=state, action=action, region=region, account_id=account_id)
    url = sqs.get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=account_id)["QueueUrl"]
    return [sqs.send_message(QueueUrl=url, MessageBody=json.dumps(e))["MessageId"] for e in events]


def _self_check(endpoint: str, region: str) -> str:
    """GetParameter over HTTP for a seeded path; returns the AMI id."""
    import boto3

    ssm = boto3.client(
        "ssm",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = f"/aws/service/eks/optimized-ami/{K8S_MINORS[-1]}/amazon-linux-2023/x86_64/standard/recommended/image_id"
    value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    if not value.startswith("ami-"):
        raise RuntimeError(f"self-check: {name} = {value!r}")
    return value


class ControlAPI:
    """WSGI middleware serving ``/sandbox-api/...`` on the emulator's port; every other path goes to moto.

    * ``GET /sandbox-api/capacity`` -> ``{"rules": [...]}``; ``POST`` ``{"instanceType", "zone"?, "capacityType"}``
      adds a refusal (201); ``DELETE`` without a body clears every rule, with a rule removes that one.
    * ``GET /sandbox-api/ami-release`` -> ``{"releases": [...]}``; ``POST`` ``{"release", "bottlerocketVersion"?,
      "deprecatePrevious"? (default true)}`` publishes a release (201, see ``release_amis``).

    Errors are ``{"error": message}`` with 400 (bad input), 404 or 405.
    """

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO") or ""
        if not path.startswith("/sandbox-api/"):
            return self.app(environ, start_response)
        headers = [("Content-Type", "application/json")]
        try:
            status, payload = self._route(path.rstrip("/"), environ["REQUEST_METHOD"], self._body(environ))
        except ValueError as exc:
            status, payload = HTTPStatus.BAD_REQUEST, {"error": str(exc)}
        except _MethodNotAllowed as exc:
            status, payload = HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"allowed: {', '.join(exc.args[0])}"}
            headers.append(("Allow", ", ".join(exc.args[0])))
        data = json.dumps(payload).encode()
        start_response(f"{status.value} {status.phrase}", [*headers, ("Content-Length", str(len(data)))])
        return [data]

    @staticmethod
    def _body(environ) -> object:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ValueError("the request body is not JSON") from None

    @staticmethod
    def _route(path: str, method: str, body: object) -> tuple[HTTPStatus, dict]:
        import ec2_emulation

        rules = ec2_emulation.CAPACITY
        if path == CAPACITY_PATH:
            if method == "GET":
                return HTTPStatus.OK, {"rules": rules.rules()}
            if method == "POST":
                rule = rules.add(body)
                return HTTPStatus.CREATED, {"rule": rule, "rules": rules.rules()}
            if method == "DELETE":
                if body is None:
                    rules.clear()
                    return HTTPStatus.OK, {"rules": []}
                removed = rules.remove(body)
                return HTTPStatus.OK, {"removed": removed, "rules": rules.rules()}
            raise _MethodNotAllowed(["GET", "POST", "DELETE"])
        if path == AMI_RELEASE_PATH:
            if method == "GET":
                return HTTPStatus.OK, {"releases": [r.as_json() for r in ami_releases()]}
            if method == "POST":
                if not isinstance(body, dict) or set(body) - {"release", "bottlerocketVersion", "deprecatePrevious"}:
                    raise ValueError('body must be {"release", "bottlerocketVersion"?, "deprecatePrevious"?}')
                deprecate = body.get("deprecatePrevious", True)
                if not isinstance(deprecate, bool):
                    raise ValueError("deprecatePrevious must be true or false")
                published = release_amis(body.get("release"), body.get("bottlerocketVersion"), deprecate)
                return HTTPStatus.CREATED, {"release": published.as_json()}
            raise _MethodNotAllowed(["GET", "POST"])
        if path == EKS_CREATE_DELAY_PATH:
            import eks_emulation

            if method == "GET":
                return HTTPStatus.OK, {"seconds": eks_emulation.CREATE_DELAY.seconds}
            if method == "POST":
                return HTTPStatus.OK, {"seconds": eks_emulation.CREATE_DELAY.set(body)}
            raise _MethodNotAllowed(["GET", "POST"])
        return HTTPStatus.NOT_FOUND, {"error": f"no such sandbox API: {path}"}


class _MethodNotAllowed(Exception):
    pass


def _sandbox_moto_server(host: str, port: int):
    """moto's ThreadedMotoServer with ControlAPI in front of its WSGI application."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    class SandboxMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:  # as moto's, with the middleware
            app = ControlAPI(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return SandboxMotoServer(ip_address=host, port=port, verbose=False)


class Emulator:
    """In-process moto server on loopback with the seeding, the EC2 emulation and ControlAPI installed."""

    def __init__(self, port: int = DEFAULT_PORT, host: str = HOST, regions: tuple[str, ...] = (DEFAULT_REGION,)):
        _require_loopback(host)
        self.host, self.port, self.regions = host, port, regions
        self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        if self.port:
            # ThreadedMotoServer.start() waits forever if its server thread fails to bind: probe first.
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((self.host, self.port))
                except OSError as exc:
                    raise OSError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        install_seeding()
        seed_now(regions=self.regions)
        self._server = _sandbox_moto_server(self.host, self.port)
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()
        for region in self.regions:
            _self_check(self.endpoint, region)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def interrupt_main(argv: list[str]) -> int:
    """``aws_emulator.py interrupt``: send interruption events to a queue of a running emulator."""
    p = argparse.ArgumentParser(
        prog="aws_emulator.py interrupt",
        description="send EventBridge-shaped interruption messages to an SQS queue of the emulator",
    )
    p.add_argument("kind", choices=sorted(INTERRUPTION_KINDS))
    p.add_argument("instance_ids", nargs="+", metavar="INSTANCE_ID")
    p.add_argument("--queue", required=True, help="SQS queue name (Karpenter's INTERRUPTION_QUEUE)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--endpoint", help=f"emulator endpoint (default http://{HOST}:{DEFAULT_PORT})")
    where.add_argument("--ready-file", type=Path, help="read the endpoint from the emulator's ready file")
    p.add_argument("--state", choices=INSTANCE_STATES, help="instance state (state-change only)")
    p.add_argument(
        "--action", choices=INSTANCE_ACTIONS, default="terminate", help="instance-action (default %(default)s)"
    )
    p.add_argument("--region", default=DEFAULT_REGION)
    p.add_argument("--account-id", default=DEFAULT_ACCOUNT_ID)
    args = p.parse_args(argv)
    endpoint = args.endpoint or f"http://{HOST}:{DEFAULT_PORT}"
    if args.ready_file:
        endpoint = json.loads(args.ready_file.read_text())["endpoint"]
    try:
        ids = send_interruption(
            endpoint,
            args.queue,
            args.kind,
            args.instance_ids,
            state=args.state,
            action=args.action,
            region=args.region,
            account_id=args.account_id,
        )
    except Exception as exc:  # noqa: BLE001 - one line on stderr, non-zero exit
        print(f"aws_emulator interrupt: {exc}", file=sys.stderr)
        return 1
    for message_id in ids:
        print(message_id)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["interrupt"]:
        return interrupt_main(argv[1:])
    p = argparse.ArgumentParser(
        description="moto on 127.0.0.1 with EKS AMIs seeded, EC2 fixed for Karpenter and /sandbox-api/ control "
        "(see also: aws_emulator.py interrupt -h)"
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port on 127.0.0.1 (0 = any free port)")
    p.add_argument("--pidfile", type=Path, help="write this process id here")
    p.add_argument("--ready-file", type=Path, help="write {endpoint, host, port, pid} JSON here once ready")
    p.add_argument(
        "--regions",
        default=DEFAULT_REGION,
        help="comma-separated regions to seed before readiness (others are seeded on first use)",
    )
    p.add_argument("--verbose", action="store_true", help="log every request (werkzeug access log)")
    args = p.parse_args(argv)
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.pidfile:
        write_atomic(args.pidfile, f"{os.getpid()}\n")
    if args.ready_file:
        args.ready_file.unlink(missing_ok=True)

    t0 = time.monotonic()
    emu = Emulator(port=args.port, regions=tuple(r for r in args.regions.split(",") if r))
    try:
        emu.start()
    except Exception as exc:  # noqa: BLE001 - report any start failure and exit non-zero
        print(f"aws_emulator: failed to start on {HOST}:{args.port}: {exc}", file=sys.stderr, flush=True)
        if args.pidfile:
            args.pidfile.unlink(missing_ok=True)
        return 1
    if args.ready_file:
        write_ready(args.ready_file, emu.endpoint, emu.host, emu.port)
    print(f"READY {emu.endpoint} ({time.monotonic() - t0:.1f}s)", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        emu.stop()
        for f in (args.ready_file, args.pidfile):
            if f:
                f.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
