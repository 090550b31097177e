#!/usr/bin/env python3
"""Loopback-only AWS emulator for the sandbox: moto in-process, with EKS AMI SSM parameters seeded.

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

* ``EC2Backend.__init__`` is wrapped the same way to register those AMI ids in the backend's ``amis`` dict (as
  public ``available`` images), so ``describe_images``/``run_instances`` on a resolved id work.

AMI ids are deterministic (``ami-0`` + 16 hex digits of a SHA-256 of region and parameter path).

CLI::

    python sandbox/aws_emulator.py --port 5055 [--pidfile F] [--ready-file F]

runs in the foreground until SIGTERM/SIGINT. Readiness (``READY <endpoint>`` on stdout and the JSON ready file
``{"endpoint", "host", "port", "pid"}``) is announced only after the seeding is done and an SSM ``GetParameter``
over HTTP returned a seeded id. ``--port 0`` picks a free port (read it from the ready file).

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
import signal
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
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
_PATCH_MARK = "_karpenter_sandbox_seeding"


def _ami_id(region: str, key: str) -> str:
    return "ami-0" + hashlib.sha256(f"{region}:{key}".encode()).hexdigest()[:16]


def eks_ami_catalog(region: str, minors: tuple[str, ...] = K8S_MINORS) -> tuple[dict[str, str], list[dict]]:
    """Return (SSM parameter name -> value, AMI descriptions) for one region."""
    params: dict[str, str] = {}
    amis: list[dict] = []
    for minor in minors:
        for arch in ARCHES:
            for variant in ("standard", "nvidia"):
                base = f"/aws/service/eks/optimized-ami/{minor}/amazon-linux-2023/{arch}/{variant}/recommended"
                name = f"amazon-eks-node-al2023-{arch}-{variant}-{minor}-v{AMI_RELEASE}"
                ami = _ami_id(region, base)
                params[f"{base}/image_id"] = ami
                params[f"{base}/image_name"] = name
                params[f"{base}/release_version"] = f"{minor}.0-{AMI_RELEASE}"
                amis.append({"ami_id": ami, "name": name, "architecture": arch, "description": f"EKS {minor} AL2023"})
            for flavour in ("", "-nvidia"):
                base = f"/aws/service/bottlerocket/aws-k8s-{minor}{flavour}/{arch}/latest"
                name = f"bottlerocket-aws-k8s-{minor}{flavour}-{arch}-v{BOTTLEROCKET_VERSION}"
                ami = _ami_id(region, base)
                params[f"{base}/image_id"] = ami
                params[f"{base}/image_version"] = BOTTLEROCKET_VERSION
                amis.append({"ami_id": ami, "name": name, "architecture": arch, "description": "Bottlerocket"})
    return params, amis


def seed_ssm_backend(backend) -> int:
    """Append the EKS AMI parameters to one moto SSM backend (private ``_parameters``). Idempotent."""
    from moto.ssm.models import Parameter

    params, _ = eks_ami_catalog(backend.region_name)
    now = datetime.now(UTC)
    added = 0
    for name, value in params.items():
        versions = backend._parameters[name]  # ParameterDict is a defaultdict(list) keyed by name
        if versions:
            continue
        versions.append(
            Parameter(
                account_id=backend.account_id,
                name=name,
                value=value,
                parameter_type="String",
                description=None,
                allowed_pattern=None,
                keyid=None,
                last_modified_date=now,
                version=1,
                data_type="aws:ec2:image" if name.endswith("/image_id") else "text",
            )
        )
        added += 1
    return added


def seed_ec2_backend(backend) -> int:
    """Register the seeded AMI ids as public images in one moto EC2 backend (its ``amis`` dict). Idempotent."""
    from moto.ec2.models.amis import Ami

    _, amis = eks_ami_catalog(backend.region_name)
    added = 0
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
        )
        added += 1
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


def install_seeding() -> None:
    """Make every SSM/EC2 backend created from now on (including after a moto reset) carry the EKS AMIs."""
    from moto.ec2.models import EC2Backend
    from moto.ssm.models import SimpleSystemManagerBackend

    _wrap_init(SimpleSystemManagerBackend, seed_ssm_backend)
    _wrap_init(EC2Backend, seed_ec2_backend)


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


def seed_cost_explorer(endpoint: str, results: list[dict], account_id: str | None = None, timeout: float = 10) -> None:
    """Queue Cost Explorer ``get_cost_and_usage`` results in a running moto (loopback endpoints only).

    ``results`` is a list of GetCostAndUsage responses, e.g. ``[{"ResultsByTime": [...]}]``.
    """
    url = urllib.parse.urlsplit(endpoint)
    _require_loopback(url.hostname or "")
    body: dict = {"results": results}
    if account_id:
        body["account_id"] = account_id
    req = urllib.request.Request(
        f"{url.scheme}://{url.netloc}/moto-api/static/ce/cost-and-usage-results",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        if resp.status != 201:
            raise RuntimeError(f"moto refused the Cost Explorer seed: HTTP {resp.status}")


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


class Emulator:
    """In-process moto server on loopback with the seeding installed."""

    def __init__(self, port: int = DEFAULT_PORT, host: str = HOST, regions: tuple[str, ...] = (DEFAULT_REGION,)):
        _require_loopback(host)
        self.host, self.port, self.regions = host, port, regions
        self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        from moto.server import ThreadedMotoServer

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
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()
        for region in self.regions:
            _self_check(self.endpoint, region)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="moto on 127.0.0.1 with EKS AMI SSM parameters seeded")
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
