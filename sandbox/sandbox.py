#!/usr/bin/env python3
"""Local sandbox: a real Kubernetes control plane, Karpenter's AWS provider and an AWS emulator, on loopback.

    sandbox/sandbox.py up [--no-aws] [--quiet]   build if needed, start everything, wait until ready
    sandbox/sandbox.py down                      stop every sandbox process (none is left behind)
    sandbox/sandbox.py status                    one line per component (exit 1 if any is down)
    sandbox/sandbox.py env [--format shell|json] environment for inventories/local and tests
    sandbox/sandbox.py reset                     down + wipe the state (etcd data, PKI)

Components, in start order (each waits for the previous one to be healthy): etcd, moto (the AWS emulator,
sandbox/aws_emulator.py, seeded with the account's EKS cluster, VPC, subnets, node security group and node role),
eks-authn (the aws-iam-authenticator stand-in: EKS `aws eks get-token` tokens, verified against moto),
kube-apiserver, CRDs (Established), kube-controller-manager, kube-scheduler, kwok (fake kubelets: nodes Ready,
pods Running), system nodes + the sandbox's EC2NodeClass, node-join (the one simulated step: an instance Karpenter
launched in the emulator registers as a Node, as EC2 boot + kubelet would), karpenter (the AWS provider's
controller, pointed at the emulator with the SDK's standard AWS_ENDPOINT_URL), prometheus (optional).
`--no-aws` starts neither the emulator nor anything that needs it (node-join, karpenter).
Everything binds 127.0.0.1. Binaries come from sandbox/build.sh (a cache outside the repository).
State lives in $SANDBOX_STATE (default <repo>/.sandbox). Ports can be moved with SANDBOX_PORT_<NAME>
or all at once with SANDBOX_PORT_OFFSET (e.g. a second sandbox: SANDBOX_STATE=/tmp/sb2 SANDBOX_PORT_OFFSET=100).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STATE = Path(os.environ.get("SANDBOX_STATE", ROOT / ".sandbox")).resolve()
MARK = "KARPENTER_EKS_SANDBOX"  # env marker on every process we start, used by `down` to find strays
REGION = "us-east-1"
CLUSTER_NAME = "sandbox"  # what Karpenter, inventories/local and `aws eks get-token --cluster-name` call it
ACCOUNT_ID = "123456789012"  # moto's default account
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


def _port(name: str, default: int) -> int:
    """SANDBOX_PORT_<NAME> moves one port; SANDBOX_PORT_OFFSET moves all (a second sandbox beside the first)."""
    return int(os.environ.get(f"SANDBOX_PORT_{name.upper()}", default + int(os.environ.get("SANDBOX_PORT_OFFSET", 0))))


PORTS = {
    "etcd": _port("etcd", 23790),
    "etcd_peer": _port("etcd_peer", 23800),
    "etcd_metrics": _port("etcd_metrics", 23810),
    "apiserver": _port("apiserver", 26443),
    "kcm": _port("kcm", 20257),
    "scheduler": _port("scheduler", 20259),
    "kwok": _port("kwok", 20247),
    "karpenter_metrics": _port("karpenter_metrics", 28080),
    "karpenter_health": _port("karpenter_health", 28081),
    "moto": _port("moto", 25055),
    "eks_authn": _port("eks_authn", 26460),
    "prometheus": _port("prometheus", 29090),
}


class SandboxError(Exception):
    pass


def log(msg: str) -> None:
    if not os.environ.get("SANDBOX_QUIET"):
        print(f"[sandbox {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- build + paths
def build() -> Path:
    """Run build.sh (a no-op when the cache is warm) and return the cache dir (bin/, data/)."""
    if not shutil.which("go"):
        raise SandboxError(
            "the Go toolchain is not on PATH: install Go >= 1.26.6 (sandbox/build.sh builds from source)"
        )
    # build.sh's progress goes to our stderr as it comes (a cold build takes minutes); its last lines are kept
    # so that a failure names the component, the command and its stderr here too.
    proc = subprocess.Popen([str(HERE / "build.sh")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tail: list[str] = []

    def pump() -> None:
        for line in proc.stderr:
            if not os.environ.get("SANDBOX_QUIET") or "FAILED" in line or line.startswith("  | "):
                sys.stderr.write(line)
            tail.append(line.rstrip())
            del tail[:-40]

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    stdout = proc.stdout.read()
    proc.wait()
    t.join(5)
    res = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, "")
    if res.returncode != 0:
        failed = [i for i, line in enumerate(tail) if "FAILED" in line]
        detail = "\n".join(tail[failed[-1] :] if failed else tail[-20:])
        raise SandboxError(f"sandbox/build.sh failed (exit {res.returncode}):\n{detail}")
    out = Path(res.stdout.strip().splitlines()[-1])
    link = STATE / "cache"
    STATE.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(out)
    return out


def cache_dir() -> Path:
    link = STATE / "cache"
    if not link.exists():
        raise SandboxError("the sandbox has not been built yet: run `sandbox/sandbox.py up`")
    return link.resolve()


def binp(name: str) -> str:
    return str(cache_dir() / "bin" / name)


def datap(*parts: str) -> Path:
    return cache_dir().joinpath("data", *parts)


# --------------------------------------------------------------------------- PKI
def ensure_pki() -> None:
    pki = STATE / "pki"
    if (pki / "admin.crt").exists():
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    pki.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    later = now + dt.timedelta(days=3650)

    def write_key(key, name):
        (pki / name).write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        os.chmod(pki / name, 0o600)

    def name(cn, org=None):
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("karpenter-eks-sandbox-ca"))
        .issuer_name(name("karpenter-eks-sandbox-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    write_key(ca_key, "ca.key")
    (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def leaf(fname, subject, sans=None, server=False):
        key = ec.generate_private_key(ec.SECP256R1())
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(later)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = b.sign(ca_key, hashes.SHA256())
        write_key(key, f"{fname}.key")
        (pki / f"{fname}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    leaf(
        "apiserver",
        name("kube-apiserver"),
        [
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes"),
            x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"),
            x509.DNSName("kubernetes.default.svc.cluster.local"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("10.96.0.1")),
        ],
        server=True,
    )
    leaf("admin", name("sandbox-admin", "system:masters"))
    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_key(sa, "sa.key")
    (pki / "sa.pub").write_bytes(
        sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def kubeconfig_path() -> Path:
    return STATE / "admin.kubeconfig"


def eks_kubeconfig_path() -> Path:
    return STATE / "eks-kubeconfig"


def write_kubeconfig() -> None:
    import base64

    pki = STATE / "pki"

    def b64(f):
        return base64.b64encode((pki / f).read_bytes()).decode()

    cluster = {
        "server": f"https://127.0.0.1:{PORTS['apiserver']}",
        "certificate-authority-data": b64("ca.crt"),
    }
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": cluster}],
        "users": [
            {
                "name": "sandbox-admin",
                "user": {"client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")},
            }
        ],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "sandbox-admin"}}],
        "current-context": "sandbox",
    }
    kubeconfig_path().write_text(json.dumps(cfg, indent=2))
    os.chmod(kubeconfig_path(), 0o600)
    write_eks_kubeconfig(cluster)


def write_eks_kubeconfig(cluster: dict) -> None:
    """What `aws eks update-kubeconfig --name sandbox` writes: the user runs `aws eks get-token` (with the
    sandbox env, the token is a GetCallerIdentity URL presigned for moto) and eks-authn verifies it."""
    if not shutil.which("aws"):
        log("the AWS CLI is not on PATH: eks-kubeconfig works for our modules (token made in-process), not for kubectl")
    arn = f"arn:aws:eks:{REGION}:{ACCOUNT_ID}:cluster/{CLUSTER_NAME}"
    exec_ = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "aws",
        "args": ["--region", REGION, "eks", "get-token", "--cluster-name", CLUSTER_NAME, "--output", "json"],
        "interactiveMode": "Never",
    }
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": arn, "cluster": cluster}],
        "users": [{"name": arn, "user": {"exec": exec_}}],
        "contexts": [{"name": arn, "context": {"cluster": arn, "user": arn}}],
        "current-context": arn,
    }
    eks_kubeconfig_path().write_text(json.dumps(cfg, indent=2))
    os.chmod(eks_kubeconfig_path(), 0o600)


# --------------------------------------------------------------------------- processes
def _pidfile(name: str) -> Path:
    return STATE / "run" / f"{name}.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def running_pid(name: str) -> int | None:
    try:
        pid = int(_pidfile(name).read_text())
    except (OSError, ValueError):
        return None
    if not _alive(pid):
        return None
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    return pid if f"{MARK}={STATE}".encode() in environ else None


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # also catch listeners on 0.0.0.0
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) != 0


def start(name: str, argv: list[str], ports: list[int], env: dict | None = None) -> int:
    pid = running_pid(name)
    if pid:
        return pid
    for p in ports:
        if not port_free(p):
            raise SandboxError(
                f"{name}: port 127.0.0.1:{p} is already in use by another process; stop it "
                f"(`ss -ltnp sport = :{p}`) or move the sandbox with SANDBOX_PORT_<NAME>=<port>"
            )
    (STATE / "run").mkdir(parents=True, exist_ok=True)
    (STATE / "logs").mkdir(parents=True, exist_ok=True)
    log(f"starting {name}")
    penv = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE")}
    penv.update(env or {})
    penv[MARK] = str(STATE)
    logf = open(STATE / "logs" / f"{name}.log", "ab")
    logf.write(f"=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {argv[0]}\n".encode())
    logf.flush()
    proc = subprocess.Popen(
        argv,
        stdout=logf,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=penv,
        start_new_session=True,
        cwd=STATE,
    )
    _pidfile(name).write_text(str(proc.pid))
    return proc.pid


def _https_ctx(client: bool = True, verify: bool = True) -> ssl.SSLContext:
    pki = STATE / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt")) if verify else ssl._create_unverified_context()
    if client:
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


def probe(url: str, ctx: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=ctx) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def _exited(name: str) -> bool:
    """True when the process we started for ``name`` is gone (checked twice, 0.5 s apart: a busy
    machine can make a single /proc read of a starting process fail)."""
    for attempt in range(2):
        try:
            pid = int(_pidfile(name).read_text())
        except (OSError, ValueError):
            return True
        if _alive(pid):
            return False
        if attempt == 0:
            time.sleep(0.5)
    return True


def wait_for(name: str, check, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.1
    while time.monotonic() < deadline:
        if check():
            return
        if name in COMPONENT_NAMES and _exited(name):
            tail = _log_tail(name)
            raise SandboxError(f"{name} exited during start-up; last log lines:\n{tail}")
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    raise SandboxError(
        f"{name} not ready after {timeout:.0f}s; see {STATE / 'logs' / (name + '.log')}\n{_log_tail(name)}"
    )


def start_script(
    name: str, script: str, args: list[str], ports: list[int], timeout: float, env: dict | None = None, healthy=None
) -> None:
    """Start one of the sandbox's own Python components (``sandbox/<script>``), which announce readiness with
    ``--ready-file``; wait for that file (and ``healthy()`` when given)."""
    ready = STATE / "run" / f"{name}.ready"
    if not running_pid(name):
        ready.unlink(missing_ok=True)  # a stale file of an earlier run must not count
    start(name, [sys.executable, str(HERE / script), *args, f"--ready-file={ready}"], ports, env=env)
    wait_for(name, lambda: ready.exists() and (healthy is None or healthy()), timeout)


def _log_tail(name: str, n: int = 15) -> str:
    """The last lines written by the latest start of ``name``."""
    try:
        text = (STATE / "logs" / f"{name}.log").read_text(errors="replace")
        return "\n".join(text.rsplit("\n=== ", 1)[-1].splitlines()[-n:])
    except OSError:
        return "(no log)"


def kubectl(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(
        [binp("kubectl"), "--kubeconfig", str(kubeconfig_path()), *args],
        input=input,
        text=True,
        capture_output=True,
    )
    if check and res.returncode != 0:
        raise SandboxError(f"kubectl {' '.join(args)} failed: {res.stderr.strip()}")
    return res


# --------------------------------------------------------------------------- components
def _kube_common() -> list[str]:
    kc = str(kubeconfig_path())
    return [
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
    ]


def start_etcd() -> None:
    p = PORTS
    start(
        "etcd",
        [
            binp("etcd"),
            "--name=s0",
            f"--data-dir={STATE / 'etcd'}",
            "--unsafe-no-fsync=true",
            f"--listen-client-urls=http://127.0.0.1:{p['etcd']}",
            f"--advertise-client-urls=http://127.0.0.1:{p['etcd']}",
            f"--listen-peer-urls=http://127.0.0.1:{p['etcd_peer']}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{p['etcd_peer']}",
            f"--initial-cluster=s0=http://127.0.0.1:{p['etcd_peer']}",
            f"--listen-metrics-urls=http://127.0.0.1:{p['etcd_metrics']}",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ],
        [p["etcd"], p["etcd_peer"], p["etcd_metrics"]],
    )
    wait_for("etcd", lambda: probe(f"http://127.0.0.1:{p['etcd']}/health"), 60)


AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
        {"level": "None"},
    ],
}


def write_audit_policy() -> Path:
    path = STATE / "audit-policy.json"
    path.write_text(json.dumps(AUDIT_POLICY))
    return path


def audit_log_path() -> Path:
    return STATE / "logs" / "audit.log"


def eks_authn_url() -> str:
    return f"http://127.0.0.1:{PORTS['eks_authn']}"


def write_eks_authn_webhook_config() -> Path:
    """The apiserver's --authentication-token-webhook-config-file (kubeconfig format; plain HTTP on loopback)."""
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "eks-authn", "cluster": {"server": f"{eks_authn_url()}/authenticate"}}],
        "users": [{"name": "kube-apiserver", "user": {}}],
        "contexts": [{"name": "eks-authn", "context": {"cluster": "eks-authn", "user": "kube-apiserver"}}],
        "current-context": "eks-authn",
    }
    path = STATE / "eks-authn-webhook.kubeconfig"
    path.write_text(json.dumps(cfg, indent=2))
    return path


def start_eks_authn() -> None:
    """The aws-iam-authenticator stand-in (sandbox/eks_authn.py). It needs moto only to verify tokens, so it also
    starts with --no-aws (every EKS token is then refused)."""
    start_script(
        "eks-authn",
        "eks_authn.py",
        [
            f"--port={PORTS['eks_authn']}",
            f"--sts-endpoint=http://127.0.0.1:{PORTS['moto']}",
            f"--cluster-name={CLUSTER_NAME}",
        ],
        [PORTS["eks_authn"]],
        30,
        healthy=lambda: probe(f"{eks_authn_url()}/healthz"),
    )


def start_apiserver() -> None:
    pki = STATE / "pki"
    pid = running_pid("kube-apiserver")
    try:
        stale = pid and b"--authentication-token-webhook-config-file" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        stale = False
    if stale:
        log("kube-apiserver was started without the EKS token webhook: `sandbox/sandbox.py down` and `up` to enable it")
    start(
        "kube-apiserver",
        [
            binp("kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{PORTS['etcd']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={PORTS['apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--max-requests-inflight=800",
            "--max-mutating-requests-inflight=400",
            # every write request is recorded, so tests can prove check mode and no-op runs write nothing
            f"--audit-policy-file={write_audit_policy()}",
            f"--audit-log-path={STATE / 'logs' / 'audit.log'}",
            "--audit-log-format=json",
            "--audit-log-maxsize=200",
            "--audit-log-maxbackup=1",
            # EKS tokens (`aws eks get-token`), beside client certificates: eks-authn plays aws-iam-authenticator.
            # The default cache TTL (2m) is kept, as EKS has one too.
            f"--authentication-token-webhook-config-file={write_eks_authn_webhook_config()}",
            "--authentication-token-webhook-version=v1",
        ],
        [PORTS["apiserver"]],
    )
    ctx = _https_ctx()
    wait_for("kube-apiserver", lambda: probe(f"https://127.0.0.1:{PORTS['apiserver']}/readyz", ctx), 120)


CRD_DIRS = ("crds/karpenter", "crds/extra")


def install_crds() -> None:
    names = []
    for d in CRD_DIRS:
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(datap(d)))
        for f in sorted(datap(d).glob("*.yaml")):
            names.append("crd/" + f.stem.split("_", 1)[1] + "." + f.stem.split("_", 1)[0])
    # `kubectl wait` fails at once (".status.conditions accessor error") when it reads a CRD before the
    # apiserver has written its first status; retry until the conditions exist, then it waits on them.
    deadline = time.monotonic() + 60
    while True:
        res = kubectl("wait", "--for=condition=Established", "--timeout=30s", *names, check=False)
        if res.returncode == 0:
            return
        if "accessor error" not in res.stderr or time.monotonic() > deadline:
            raise SandboxError(f"CRDs not Established: {res.stderr.strip()}")
        time.sleep(0.2)


def start_kcm() -> None:
    pki = STATE / "pki"
    start(
        "kube-controller-manager",
        [
            binp("kube-controller-manager"),
            *_kube_common(),
            f"--secure-port={PORTS['kcm']}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            "--use-service-account-credentials=true",
            "--controllers=*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle-controller",
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
            "--kube-api-qps=100",
            "--kube-api-burst=200",
        ],
        [PORTS["kcm"]],
    )


def start_scheduler() -> None:
    start(
        "kube-scheduler",
        [
            binp("kube-scheduler"),
            *_kube_common(),
            f"--secure-port={PORTS['scheduler']}",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
        ],
        [PORTS["scheduler"]],
    )


def start_kwok() -> None:
    s = datap("kwok-stages")
    start(
        "kwok",
        [
            binp("kwok"),
            f"--kubeconfig={kubeconfig_path()}",
            "-c",
            str(s / "node/fast/node-initialize.yaml"),
            "-c",
            str(s / "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml"),
            "-c",
            str(s / "pod/fast/pod-ready.yaml"),
            "-c",
            str(s / "pod/fast/pod-complete.yaml"),
            "-c",
            str(s / "pod/fast/pod-delete.yaml"),
            "-c",  # chaos: nodes labelled node-not-ready.stage.kwok.x-k8s.io=true go NotReady (drills)
            str(s / "node/chaos/node-not-ready.yaml"),
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-ip=127.0.0.1",
            f"--node-port={PORTS['kwok']}",
            f"--server-address=127.0.0.1:{PORTS['kwok']}",
            "--node-lease-duration-seconds=40",
            "--cidr=10.128.0.0/12",
        ],
        [PORTS["kwok"]],
    )
    wait_for("kwok", lambda: probe(f"http://127.0.0.1:{PORTS['kwok']}/healthz"), 60)


SYSTEM_NODE_TYPE = {"cpu": "4", "memory": "16Gi", "pods": "58", "ephemeral-storage": "80Gi"}

# What the account of an EKS cluster already has before Karpenter is installed: the cluster, its VPC with one
# private subnet per zone, the node security group and the node role, tagged for Karpenter's discovery. The
# names, CIDRs and tags are those the `cluster` role creates on inventories/local, so site.yml adopts them.
VPC_CIDR = "10.42.0.0/16"
SUBNETS = (("10.42.0.0/19", "us-east-1a"), ("10.42.32.0/19", "us-east-1b"), ("10.42.64.0/19", "us-east-1c"))
SERVICE_CIDR = "10.96.0.0/16"
NODE_ROLE = f"KarpenterNodeRole-{CLUSTER_NAME}"
EKS_ROLE = f"EKSClusterRole-{CLUSTER_NAME}"
INTERRUPTION_QUEUE = CLUSTER_NAME  # the karpenter role's karpenter_interruption_queue_name on inventories/local
SANDBOX_NODE_CLASS = "sandbox"  # the sandbox's own EC2NodeClass, for tests and tools that need a Ready one


def kubernetes_minor() -> str:
    out = kubectl("version", "-o", "json").stdout
    v = json.loads(out)["serverVersion"]
    return f"{v['major']}.{v['minor'].rstrip('+')}"


def _aws(service: str):
    import boto3
    from botocore.config import Config

    # short timeouts: an emulator that does not answer is reported within seconds, never waited on for minutes
    cfg = Config(connect_timeout=2, read_timeout=15, retries={"max_attempts": 2, "mode": "standard"})
    return boto3.client(
        service,
        config=cfg,
        endpoint_url=f"http://127.0.0.1:{PORTS['moto']}",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def seed_aws(k8s_minor: str) -> dict:
    """Create (once per emulator start) the EKS cluster's AWS side; returns its ids."""
    ec2, iam, eks = _aws("ec2"), _aws("iam"), _aws("eks")
    disc = {"Key": "karpenter.sh/discovery", "Value": CLUSTER_NAME}
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{CLUSTER_NAME}-vpc"]}])["Vpcs"]
    if vpcs:
        vpc_id = vpcs[0]["VpcId"]
    else:
        vpc_id = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
        ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": f"{CLUSTER_NAME}-vpc"}])
    have = {
        x["CidrBlock"]: x["SubnetId"]
        for x in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    }
    subnet_ids = []
    for cidr, zone in SUBNETS:
        sid = (
            have.get(cidr)
            or ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]
        )
        ec2.create_tags(
            Resources=[sid],
            Tags=[
                disc,
                {"Key": "Name", "Value": f"{CLUSTER_NAME}-private-{zone}"},
                {"Key": "kubernetes.io/role/internal-elb", "Value": "1"},
                {"Key": f"kubernetes.io/cluster/{CLUSTER_NAME}", "Value": "shared"},
            ],
        )
        subnet_ids.append(sid)
    sgs = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [f"{CLUSTER_NAME}-node"]}]
    )["SecurityGroups"]
    sg_id = (
        sgs[0]["GroupId"]
        if sgs
        else ec2.create_security_group(
            GroupName=f"{CLUSTER_NAME}-node",
            Description=f"Nodes of EKS cluster {CLUSTER_NAME} (Karpenter discovery)",
            VpcId=vpc_id,
        )["GroupId"]
    )
    ec2.create_tags(Resources=[sg_id], Tags=[disc, {"Key": "Name", "Value": f"{CLUSTER_NAME}-node"}])

    def role(name: str, service: str) -> str:
        try:
            return iam.get_role(RoleName=name)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            doc = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
            }
            return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(doc))["Role"]["Arn"]

    role(NODE_ROLE, "ec2.amazonaws.com")
    eks_role = role(EKS_ROLE, "eks.amazonaws.com")
    try:
        eks.describe_cluster(name=CLUSTER_NAME)
    except eks.exceptions.ResourceNotFoundException:
        eks.create_cluster(
            name=CLUSTER_NAME,
            version=k8s_minor,
            roleArn=eks_role,
            resourcesVpcConfig={"subnetIds": subnet_ids, "securityGroupIds": [sg_id]},
            kubernetesNetworkConfig={"serviceIpv4Cidr": SERVICE_CIDR},
        )
    _aws("sqs").create_queue(QueueName=INTERRUPTION_QUEUE)
    return {"vpc_id": vpc_id, "subnet_ids": subnet_ids, "security_group_id": sg_id}


def system_objects() -> str:
    docs = []
    for i, zone in enumerate(ZONES[:2]):
        name = f"sandbox-system-{zone[-1]}"
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "node.kubernetes.io/instance-type": "m6i.xlarge",
                        "topology.kubernetes.io/region": REGION,
                        "topology.kubernetes.io/zone": zone,
                        "eks.amazonaws.com/nodegroup": "system",
                        "eks.amazonaws.com/capacityType": "ON_DEMAND",
                        "type": "kwok",
                    },
                },
                "spec": {"providerID": f"aws:///{zone}/i-0sandbox{i:08d}"},
                "status": {"allocatable": SYSTEM_NODE_TYPE, "capacity": SYSTEM_NODE_TYPE},
            }
        )
    return "\n---\n".join(json.dumps(d) for d in docs)


def sandbox_node_class() -> dict:
    """The sandbox's own EC2NodeClass (what tests and tools reference when they need a Ready node class)."""
    disc = [{"tags": {"karpenter.sh/discovery": CLUSTER_NAME}}]
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": SANDBOX_NODE_CLASS},
        "spec": {
            "role": NODE_ROLE,
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "subnetSelectorTerms": disc,
            "securityGroupSelectorTerms": disc,
        },
    }


def create_system_objects() -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=system_objects())
    kubectl("wait", "--for=condition=Ready", "--timeout=60s", "node", "-l", "eks.amazonaws.com/nodegroup=system")


def start_node_join() -> None:
    start_script(
        "node-join",
        "node_join.py",
        [
            f"--kubeconfig={kubeconfig_path()}",
            f"--aws-endpoint=http://127.0.0.1:{PORTS['moto']}",
            f"--region={REGION}",
            f"--cluster-name={CLUSTER_NAME}",
        ],
        [],
        30,
        env={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION},
    )


def karpenter_env() -> dict[str, str]:
    """The settings a real install gives the controller (chart values -> env), pointed at the emulator."""
    return {
        "KUBECONFIG": str(kubeconfig_path()),
        "CLUSTER_NAME": CLUSTER_NAME,
        "CLUSTER_ENDPOINT": f"https://127.0.0.1:{PORTS['apiserver']}",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{PORTS['moto']}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",  # never ask IMDS (not on loopback)
        # no Pricing API in the emulator and no instance-profile GC across accounts: what private clusters set
        "ISOLATED_VPC": "true",
        "INTERRUPTION_QUEUE": INTERRUPTION_QUEUE,
        "DISABLE_LEADER_ELECTION": "true",
        "METRICS_PORT": str(PORTS["karpenter_metrics"]),
        "HEALTH_PROBE_PORT": str(PORTS["karpenter_health"]),
        "LOG_LEVEL": os.environ.get("SANDBOX_KARPENTER_LOG_LEVEL", "info"),
        "FEATURE_GATES": "NodeRepair=true,SpotToSpotConsolidation=true",
        "BATCH_IDLE_DURATION": "1s",
        "BATCH_MAX_DURATION": "5s",
    }


def start_karpenter() -> None:
    start(
        "karpenter", [binp("karpenter")], [PORTS["karpenter_metrics"], PORTS["karpenter_health"]], env=karpenter_env()
    )
    wait_for("karpenter", lambda: probe(f"http://127.0.0.1:{PORTS['karpenter_health']}/readyz"), 120)


def wait_node_class_ready(timeout: float = 90) -> None:
    def ready() -> bool:
        res = kubectl("get", "ec2nodeclass", SANDBOX_NODE_CLASS, "-o", "json", check=False)
        if res.returncode != 0:
            return False
        conds = json.loads(res.stdout).get("status", {}).get("conditions", [])
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)

    try:
        wait_for("karpenter", ready, timeout)
    except SandboxError as exc:
        res = kubectl("get", "ec2nodeclass", SANDBOX_NODE_CLASS, "-o", "jsonpath={.status.conditions}", check=False)
        raise SandboxError(f"EC2NodeClass {SANDBOX_NODE_CLASS} is not Ready: {res.stdout}\n{exc}") from None


def start_moto() -> None:
    start_script("moto", "aws_emulator.py", ["--port", str(PORTS["moto"])], [PORTS["moto"]], 90)


def prometheus_config() -> Path:
    """Scrape Karpenter's real /metrics; rule files dropped in <state>/prometheus-rules/ are loaded."""
    rules = STATE / "prometheus-rules"
    rules.mkdir(parents=True, exist_ok=True)
    cfg = {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [str(rules / "*.yml")],
        "scrape_configs": [
            {"job_name": "karpenter", "static_configs": [{"targets": [f"127.0.0.1:{PORTS['karpenter_metrics']}"]}]},
            {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{PORTS['prometheus']}"]}]},
        ],
    }
    path = STATE / "prometheus.yml"
    path.write_text(json.dumps(cfg, indent=2))  # JSON is valid YAML
    return path


def start_prometheus() -> bool:
    if not Path(binp("prometheus")).exists():
        log("prometheus not available (Debian package could not be fetched); skipping it")
        return False
    start(
        "prometheus",
        [
            binp("prometheus"),
            f"--config.file={prometheus_config()}",
            f"--storage.tsdb.path={STATE / 'prometheus'}",
            "--storage.tsdb.retention.time=2h",
            f"--web.listen-address=127.0.0.1:{PORTS['prometheus']}",
            "--web.enable-lifecycle",
        ],
        [PORTS["prometheus"]],
    )
    wait_for("prometheus", lambda: probe(f"http://127.0.0.1:{PORTS['prometheus']}/-/ready"), 60)
    return True


COMPONENT_NAMES = (
    "etcd",
    "eks-authn",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "node-join",
    "karpenter",
    "moto",
    "prometheus",
)
OPTIONAL = ("prometheus",)


def health() -> dict[str, bool]:
    ctx = _https_ctx() if (STATE / "pki" / "ca.crt").exists() else None
    insecure = ssl._create_unverified_context()
    checks = {
        "etcd": lambda: probe(f"http://127.0.0.1:{PORTS['etcd']}/health"),
        "eks-authn": lambda: probe(f"{eks_authn_url()}/healthz"),
        "kube-apiserver": lambda: ctx is not None and probe(f"https://127.0.0.1:{PORTS['apiserver']}/readyz", ctx),
        "kube-controller-manager": lambda: probe(f"https://127.0.0.1:{PORTS['kcm']}/healthz", insecure),
        "kube-scheduler": lambda: probe(f"https://127.0.0.1:{PORTS['scheduler']}/healthz", insecure),
        "kwok": lambda: probe(f"http://127.0.0.1:{PORTS['kwok']}/healthz"),
        "node-join": lambda: (STATE / "run" / "node-join.ready").exists(),
        "karpenter": lambda: probe(f"http://127.0.0.1:{PORTS['karpenter_health']}/readyz"),
        "moto": lambda: (
            (STATE / "run" / "moto.ready").exists() and probe(f"http://127.0.0.1:{PORTS['moto']}/moto-api/")
        ),
        "prometheus": lambda: probe(f"http://127.0.0.1:{PORTS['prometheus']}/-/ready"),
    }
    return {n: bool(running_pid(n)) and checks[n]() for n in COMPONENT_NAMES}


def env_vars() -> dict[str, str]:
    kc = str(kubeconfig_path())
    bindir = str(cache_dir() / "bin") if (STATE / "cache").exists() else ""
    return {
        "KUBECONFIG": kc,
        "K8S_AUTH_KUBECONFIG": kc,
        "SANDBOX_EKS_KUBECONFIG": str(eks_kubeconfig_path()),  # user = `aws eks get-token` (kubectl needs the AWS CLI)
        "SANDBOX_EKS_AUTHN_URL": eks_authn_url(),  # GET /stats: reviews, authenticated, rejected, sts_requests
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{PORTS['moto']}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "SANDBOX_BIN": bindir,
        "SANDBOX_STATE": str(STATE),
        "SANDBOX_NODE_CLASS": SANDBOX_NODE_CLASS,  # a Ready EC2NodeClass for NodePools of tests and tools
        "SANDBOX_INTERRUPTION_QUEUE": INTERRUPTION_QUEUE,
        "SANDBOX_AUDIT_LOG": str(audit_log_path()),
        "KARPENTER_METRICS_URL": f"http://127.0.0.1:{PORTS['karpenter_metrics']}/metrics",
        "PROMETHEUS_URL": f"http://127.0.0.1:{PORTS['prometheus']}",
        "KARPENTER_HEALTH_URL": f"http://127.0.0.1:{PORTS['karpenter_health']}/readyz",
    }


def write_env_files() -> None:
    envs = env_vars()
    (STATE / "env.json").write_text(json.dumps(envs, indent=2))
    (STATE / "env.sh").write_text("".join(f"export {k}={v!r}\n" for k, v in envs.items()))


def up(with_aws: bool = True, with_prometheus: bool = True, control_plane_only: bool = False) -> None:
    t0 = time.monotonic()
    STATE.mkdir(parents=True, exist_ok=True)
    build()
    ensure_pki()
    write_kubeconfig()
    log("etcd")
    start_etcd()
    if with_aws:
        log("moto (AWS emulator)")
        start_moto()
    log("eks-authn (EKS token webhook)")
    start_eks_authn()
    log("kube-apiserver")
    start_apiserver()
    log("CRDs")
    install_crds()
    if with_aws:
        log("AWS side of the EKS cluster (VPC, subnets, security group, roles, cluster, interruption queue)")
        try:
            seed_aws(kubernetes_minor())
        except Exception as exc:  # botocore errors, connection refused: name the component and the reason
            raise SandboxError(f"moto (AWS emulator) at 127.0.0.1:{PORTS['moto']} refused the seeding: {exc}") from None
    if control_plane_only:  # e.g. benchmarks that create thousands of NodeClaims no controller may act on
        write_env_files()
        log(f"apiserver + CRDs ready in {time.monotonic() - t0:.1f}s (no controllers)")
        return
    log("kube-controller-manager, kube-scheduler")
    start_kcm()
    start_scheduler()
    insecure = ssl._create_unverified_context()
    wait_for("kube-controller-manager", lambda: probe(f"https://127.0.0.1:{PORTS['kcm']}/healthz", insecure), 90)
    wait_for("kube-scheduler", lambda: probe(f"https://127.0.0.1:{PORTS['scheduler']}/healthz", insecure), 90)
    log("kwok + system nodes")
    start_kwok()
    create_system_objects()
    if with_aws:
        log("node-join (emulator instances -> Nodes) and karpenter (AWS provider)")
        kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(sandbox_node_class()))
        start_node_join()
        start_karpenter()
        wait_node_class_ready()
    else:
        log("--no-aws: no AWS emulator, so neither node-join nor karpenter runs")
    if with_prometheus:
        log("prometheus (scrapes Karpenter)")
        start_prometheus()
    write_env_files()
    log(f'ready in {time.monotonic() - t0:.1f}s; `eval "$(sandbox/sandbox.py env)"` to use it')


def _stray_pids() -> list[int]:
    found = []
    marker = f"{MARK}={STATE}".encode()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if marker in (d / "environ").read_bytes().split(b"\0"):
                found.append(int(d.name))
        except OSError:
            continue
    return found


def _signal(pid: int, sig: int) -> None:
    """Signal the process group we started (pid is its leader), or the single process if it is not one."""
    try:
        os.killpg(pid, sig)
    except OSError:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def _stop(pids: list[int], grace: float) -> None:
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)


def down() -> None:
    """Stop everything: the clients of etcd first (the apiserver's graceful drain of long watches can
    take minutes, so it gets 3 s before SIGKILL), then etcd, then any stray process carrying our marker."""
    others = [p for n in reversed(COMPONENT_NAMES) if n != "etcd" and (p := running_pid(n))]
    _stop(others, 3.0)
    etcd = running_pid("etcd")
    if etcd:
        _stop([etcd], 10.0)
    _stop([p for p in _stray_pids() if _alive(p)], 2.0)
    for f in (STATE / "run").glob("*") if (STATE / "run").exists() else []:
        f.unlink(missing_ok=True)
    left = [p for p in _stray_pids() if _alive(p)]
    if left:
        raise SandboxError(f"processes still running after SIGKILL: {left}")
    log("stopped")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up")
    u.add_argument("--no-aws", action="store_true", help="no AWS emulator (and so no node-join, no karpenter)")
    u.add_argument("--quiet", action="store_true", help="print only errors")
    u.add_argument("--no-prometheus", action="store_true", help="do not start prometheus")
    u.add_argument("--control-plane-only", action="store_true", help="etcd + apiserver + CRDs, no controllers")
    sub.add_parser("down")
    sub.add_parser("status")
    e = sub.add_parser("env")
    e.add_argument("--format", choices=("shell", "json"), default="shell")
    sub.add_parser("reset")
    sub.add_parser("build")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "up":
            if args.quiet:
                os.environ["SANDBOX_QUIET"] = "1"
            up(
                with_aws=not args.no_aws,
                with_prometheus=not args.no_prometheus,
                control_plane_only=args.control_plane_only,
            )
        elif args.cmd == "down":
            down()
        elif args.cmd == "reset":
            down()
            for d in ("etcd", "pki", "logs", "run", "prometheus"):
                shutil.rmtree(STATE / d, ignore_errors=True)
            log("state wiped")
        elif args.cmd == "build":
            print(build())
        elif args.cmd == "status":
            h = health()
            for n, ok in h.items():
                print(f"{n:26s} {'ready' if ok else ('down (optional)' if n in OPTIONAL else 'down')}")
            return 0 if all(ok for n, ok in h.items() if n not in OPTIONAL) else 1
        elif args.cmd == "env":
            envs = env_vars()
            if args.format == "json":
                print(json.dumps(envs, indent=2))
            else:
                print("".join(f"export {k}={v!r}\n" for k, v in envs.items()), end="")
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
