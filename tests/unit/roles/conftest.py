"""Role templates rendered once per session with the role defaults (tests/unit/roles/playbooks/render.yml), and
site.yml runs against a private moto (``private_moto``, ``run_site``)."""

import json
import os
import subprocess
import sys
import time

import pytest
from sitelib import AWS_ENV

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    dest = tmp_path_factory.mktemp("rendered")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    res = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            os.path.join(HERE, "playbooks", "render.yml"),
            "-e",
            f"dest={dest}",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return dest


@pytest.fixture(scope="module")
def private_moto(tmp_path_factory):
    """A moto server of this test module only; yields its endpoint (http://127.0.0.1:<port>)."""
    d = tmp_path_factory.mktemp("moto")
    ready, log = d / "ready.json", d / "moto.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | AWS_ENV
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                os.path.join(ROOT, "sandbox", "aws_emulator.py"),
                "--port",
                "0",
                "--ready-file",
                str(ready),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=d,
        )
    try:
        deadline = time.monotonic() + 90
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"aws_emulator did not start:\n{log.read_text()}")
            time.sleep(0.2)
        endpoint = json.loads(ready.read_text())["endpoint"]
        assert endpoint.startswith("http://127.0.0.1:")
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
