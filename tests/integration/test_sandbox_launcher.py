"""The launcher: `up` twice is harmless, `down` leaves no process, a busy port gives a clear message.

Runs a second, minimal sandbox (own state dir, ports moved by SANDBOX_PORT_OFFSET) beside the shared one.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SANDBOX = os.path.join(ROOT, "sandbox", "sandbox.py")
OFFSET = 300


def run(state, *args):
    env = dict(os.environ, SANDBOX_STATE=str(state), SANDBOX_PORT_OFFSET=str(OFFSET))
    return subprocess.run([sys.executable, SANDBOX, *args], capture_output=True, text=True, env=env, timeout=300)


def marked_processes(state):
    marker = f"KARPENTER_EKS_SANDBOX={state}".encode()
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/environ", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        found.append(int(d))
            except OSError:
                pass
    return found


@pytest.fixture
def state(tmp_path, sandbox):  # needs the shared sandbox's build (cache) to exist
    st = tmp_path / "sb"
    yield st
    run(st, "down")


def test_up_twice_then_down_leaves_nothing(state):
    first = run(state, "up", "--no-aws", "--no-prometheus")
    assert first.returncode == 0, first.stderr[-2000:]
    pids = marked_processes(state)
    assert len(pids) >= 6
    second = run(state, "up", "--no-aws", "--no-prometheus")
    assert second.returncode == 0, second.stderr[-2000:]
    assert sorted(marked_processes(state)) == sorted(pids), "a second `up` must not start anything again"
    env = json.loads(run(state, "env", "--format", "json").stdout)
    assert env["KUBECONFIG"].startswith(str(state))
    down = run(state, "down")
    assert down.returncode == 0
    assert marked_processes(state) == []
    assert run(state, "status").returncode == 1


def test_busy_port_gives_a_clear_message(state):
    port = 23790 + OFFSET  # etcd client port of this instance
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the previous test's sockets may be in TIME_WAIT
        s.bind(("127.0.0.1", port))
        s.listen(1)
        res = run(state, "up", "--no-aws", "--no-prometheus")
    assert res.returncode == 2
    assert f"port 127.0.0.1:{port} is already in use" in res.stderr
    assert "SANDBOX_PORT_" in res.stderr
    assert marked_processes(state) == []


def test_missing_go_toolchain_is_explained(state):
    env = dict(os.environ, SANDBOX_STATE=str(state), PATH="/nonexistent")
    res = subprocess.run([sys.executable, SANDBOX, "up"], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 2
    assert "Go toolchain is not on PATH" in res.stderr
