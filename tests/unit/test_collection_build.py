"""`ansible-galaxy collection build` ships the collection and nothing else (no tests, caches, state, binaries)."""

import os
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORBIDDEN_TOP = {"tests", "sandbox", "bench", ".sandbox", ".venv", ".collections", "build", "scripts", ".ci", "hack"}


def test_tarball_contains_only_the_collection(tmp_path):
    galaxy = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    subprocess.run(
        [galaxy, "collection", "build", "--output-path", str(tmp_path), ROOT], check=True, capture_output=True, cwd=ROOT
    )
    (tarball,) = tmp_path.glob("karpenter_eks-platform-*.tar.gz")
    with tarfile.open(tarball) as tf:
        members = tf.getmembers()
        names = [m.name for m in members]
        tops = {n.split("/", 1)[0] for n in names}
        assert not tops & FORBIDDEN_TOP, sorted(tops & FORBIDDEN_TOP)
        assert "MANIFEST.json" in names and "plugins/modules/karpenter_provisioner.py" in names
        assert "plugins/module_utils/karpenter/crds/nodepool_v1.py" in names
        for m in members:
            if m.isfile():
                head = tf.extractfile(m).read(4)
                assert head != b"\x7fELF", f"binary in the tarball: {m.name}"
                assert not m.name.endswith((".key", ".pyc")), m.name
    assert tarball.stat().st_size < 5 * 1024 * 1024
