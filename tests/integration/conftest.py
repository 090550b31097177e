"""Integration fixtures: the real sandbox (kube-apiserver + Karpenter KWOK provider + moto).

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

    def apply(self, docs):
        return self.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs)
        )

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
