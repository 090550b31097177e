"""Role templates rendered once per session with the role defaults (tests/unit/roles/playbooks/render.yml), and
site.yml runs against a private moto (``private_moto``, ``run_site``)."""

import os
import subprocess
import sys

import pytest
from awslib import moto_server

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
    with moto_server(str(tmp_path_factory.mktemp("moto"))) as endpoint:
        yield endpoint
