"""Integration fixtures: the real sandbox (kube-apiserver + Karpenter's AWS provider + the moto AWS emulator).

The ``sandbox`` fixture brings the sandbox up once per test run (``sandbox.py up`` is idempotent and
takes a few seconds when the binaries are cached) and tears it down at the end only if this run
started it, unless SANDBOX_KEEP=1.
"""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SANDBOX = os.path.join(ROOT, "sandbox", "sandbox.py")


def _sandbox(*args, check=True):
    return subprocess.run([sys.executable, SANDBOX, *args], capture_output=True, text=True, check=check)


def _control_plane_user(username: str) -> bool:
    return username in ("system:kube-controller-manager", "system:kube-scheduler") or username.startswith(
        ("system:serviceaccount:kube-system:", "system:node:")
    )


class Sandbox:
    def __init__(self, env):
        self.env = env
        self.kubectl_bin = os.path.join(env["SANDBOX_BIN"], "kubectl")
        from kubernetes import client, config

        self.api_client = config.new_client_from_config(config_file=env["KUBECONFIG"])
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)

    def kubectl(self, *args, input=None, check=True):
        res = subprocess.run(
            [self.kubectl_bin, "--kubeconfig", self.env["KUBECONFIG"], *args],
            input=input,
            capture_output=True,
            text=True,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {res.stderr}")
        return res

    def restart_controller(self):
        """SIGTERM the Karpenter controller and start it again (``sandbox.py up`` starts what is not running), as
        a pod restart on EKS would; returns once it answers its readiness probe."""
        import signal

        pid = int(open(os.path.join(self.env["SANDBOX_STATE"], "run", "karpenter.pid")).read())
        os.kill(pid, signal.SIGTERM)

        def gone():
            try:
                return open(f"/proc/{pid}/stat").read().split(") ", 1)[1][0] == "Z"
            except OSError:
                return True

        self.wait_until("the controller stopped", gone, 60)
        _sandbox("up", "--quiet")

    def apply(self, docs):
        return self.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs)
        )

    # ---- audit log: every write request the apiserver accepted or rejected (sandbox/sandbox.py policy)
    def audit_mark(self):
        path = self.env["SANDBOX_AUDIT_LOG"]
        return os.path.getsize(path) if os.path.exists(path) else 0

    def writes_since(self, mark, user_agent=None):
        """Write requests (create/update/patch/delete) logged after ``mark``; optionally by user agent."""
        time.sleep(0.3)  # the audit backend writes synchronously, this only absorbs file buffering
        with open(self.env["SANDBOX_AUDIT_LOG"]) as f:
            f.seek(mark)
            events = [json.loads(line) for line in f if line.strip()]
        return [
            e
            for e in events
            if e.get("stage") == "ResponseComplete"
            and (user_agent is None or (e.get("userAgent") or "").startswith(user_agent))
        ]

    def client_writes_since(self, mark):
        """Writes after ``mark`` minus those of the cluster's own control plane: the controller-manager and the
        controllers it runs as kube-system service accounts (a new namespace gets its ``default`` ServiceAccount and
        ``kube-root-ca.crt`` ConfigMap from them, asynchronously), the scheduler and the nodes."""
        return [
            e for e in self.writes_since(mark) if not _control_plane_user((e.get("user") or {}).get("username", ""))
        ]

    def playbook(self, playbook, *args, extra_vars=None, check=True):
        """Run ansible-playbook with the JSON callback; returns (rc, parsed output)."""
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
            ANSIBLE_CALLBACK_RESULT_FORMAT="json",
        )
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), playbook, *args]
        if extra_vars is not None:
            cmd += ["-e", json.dumps(extra_vars)]
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        try:
            out = json.loads(res.stdout)
        except ValueError:
            raise AssertionError(
                f"ansible-playbook output is not JSON (rc={res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
            )
        if check and res.returncode != 0:
            raise AssertionError(f"ansible-playbook failed (rc={res.returncode}):\n{json.dumps(out)[-4000:]}")
        return res.returncode, out

    def aws_price(self, instance_type, capacity_type, zone):
        """What AWS would charge per hour: on-demand from the price list the collection ships (Karpenter's generated
        us-east-1 table, which the sandbox's Karpenter also uses with ISOLATED_VPC), spot from the emulator's
        DescribeSpotPriceHistory (the newest Linux/UNIX price of that type in that zone)."""
        if capacity_type == "on-demand":
            from ansible_collections.karpenter_eks.platform.plugins.module_utils.cost_data import prices_us_east_1

            return prices_us_east_1.ON_DEMAND[instance_type]
        import boto3

        ec2 = boto3.client("ec2", endpoint_url=self.env["AWS_ENDPOINT_URL"], region_name=self.env["AWS_REGION"])
        history = ec2.describe_spot_price_history(
            InstanceTypes=[instance_type], AvailabilityZone=zone, ProductDescriptions=["Linux/UNIX"]
        )["SpotPriceHistory"]
        return float(max(history, key=lambda h: h["Timestamp"])["SpotPrice"])

    INTERRUPTION_REASONS = (
        "SpotInterrupted",
        "SpotRebalanceRecommendation",
        "InstanceStopping",
        "InstanceTerminating",
        "InstanceUnhealthy",
        "TerminatingOnInterruption",
        "CapacityReservationInstanceInterrupted",
    )

    def forget_interruptions(self, names):
        """Delete the controller's interruption events about these Nodes/NodeClaims: a test's real interruptions
        must not count as a cluster-wide storm for the spot runbooks of the tests after it (15-minute window)."""
        names = set(names)
        for reason in self.INTERRUPTION_REASONS:
            for e in self.core.list_event_for_all_namespaces(field_selector=f"reason={reason}").items:
                if e.involved_object.name in names:
                    self.kubectl("delete", "event", "-n", e.metadata.namespace, e.metadata.name, check=False)

    def wait_until(self, what, fn, timeout=60.0):
        """Poll a read-only condition (tests only); the product code uses watches."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="session")
def sandbox():
    was_up = _sandbox("status", check=False).returncode == 0
    up = _sandbox("up", check=False)
    if up.returncode != 0:
        pytest.fail(f"sandbox up failed:\n{up.stderr[-3000:]}")
    env = json.loads(_sandbox("env", "--format", "json").stdout)
    os.environ.update(env)
    yield Sandbox(env)
    if not was_up and not os.environ.get("SANDBOX_KEEP"):
        _sandbox("down", check=False)


@pytest.fixture
def uid():
    return uuid.uuid4().hex[:6]
