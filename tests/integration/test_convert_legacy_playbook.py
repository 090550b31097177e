"""playbooks/convert_legacy.yml converts a folder and stops on what cannot be converted; the converted objects are
accepted by the real apiserver. (tests/unit/karpenter/test_convert_legacy_playbook.py covers the rest offline.)"""

import os
import shutil

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PLAY = os.path.join(ROOT, "playbooks", "convert_legacy.yml")


def test_converts_folder_and_reports_unconvertible(sandbox, tmp_path, uid):
    src = tmp_path / "old"
    shutil.copytree(os.path.join(HERE, "legacy"), src)
    dest = tmp_path / "v1"
    rc, _out = sandbox.playbook(PLAY, extra_vars={"src": str(src), "dest": str(dest)}, check=False)
    assert rc != 0, "launchTemplate cannot be converted: the play must fail after writing the other file"
    docs = list(yaml.safe_load_all((dest / "provisioner.yaml").read_text()))
    kinds = {(d["apiVersion"], d["kind"]) for d in docs}
    assert kinds == {("karpenter.sh/v1", "NodePool"), ("karpenter.k8s.aws/v1", "EC2NodeClass")}
    np = next(d for d in docs if d["kind"] == "NodePool")
    assert np["spec"]["limits"] == {"cpu": "1000"}
    assert np["spec"]["disruption"]["consolidateAfter"] == "30s"
    report = yaml.safe_load((dest / "conversion-report.yml").read_text())
    assert any("launchTemplate" in r["path"] and r["severity"] == "error" for r in report)
    assert {r["file"] for r in report} == {str(src / "launch-template.yaml"), str(src / "provisioner.yaml")}
    assert not (dest / "launch-template.yaml").exists()  # a file with an error is not written, not even in part

    # the converted objects are accepted by the real apiserver (server-side dry run)
    for d in docs:
        d["metadata"]["name"] += f"-{uid}"  # never collide with objects other tests or site.yml created
        res = sandbox.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=yaml.safe_dump(d))
        assert res.returncode == 0
