"""Fixtures for the sandbox helpers (sandbox/aws_emulator.py, sandbox/eks_authn.py, ...)."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from pathlib import Path

import pytest
from awslib import emulator_process

REPO = Path(__file__).resolve().parents[3]
SANDBOX = REPO / "sandbox"

# Dummy credentials; every AWS call in these tests goes to the emulator on 127.0.0.1.
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


def load_module(name: str):
    """Import sandbox/<name>.py under a unique module name (sandbox/ is not a package)."""
    mod_name = f"karpenter_sandbox_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    if str(SANDBOX) not in sys.path:
        sys.path.insert(0, str(SANDBOX))  # the scripts import their sibling procfiles.py, as when run from sandbox/
    spec = importlib.util.spec_from_file_location(mod_name, SANDBOX / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def eks_authn_mod():
    return load_module("eks_authn")


@pytest.fixture(scope="session")
def aws_emulator_mod():
    return load_module("aws_emulator")


@pytest.fixture(autouse=True)
def _aws_test_env(monkeypatch):
    for k in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL", "AWS_URL"):
        monkeypatch.delenv(k, raising=False)
    for k, v in AWS_TEST_ENV.items():
        monkeypatch.setenv(k, v)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """Run sandbox/aws_emulator.py as a process on a free 127.0.0.1 port; yield its ready-file info."""
    d = tmp_path_factory.mktemp("aws-emulator")
    ready, pidfile, log = d / "ready.json", d / "emulator.pid", d / "emulator.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | AWS_TEST_ENV
    port = free_loopback_port()
    with emulator_process(str(d), port=port, extra_args=("--pidfile", str(pidfile)), env=env) as (proc, info):
        info.update(proc=proc, ready_file=ready, pidfile=pidfile, log=log)
        yield info
