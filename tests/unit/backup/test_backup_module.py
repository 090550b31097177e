"""karpenter_backup's module layer: bad parameters fail before the module connects to the cluster."""

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import client as kclient
from ansible_collections.karpenter_eks.platform.plugins.modules import karpenter_backup


def run_main(args, capsys):
    """(rc, parsed JSON output) of karpenter_backup.main() with ``args``."""
    with patch_module_args(args), pytest.raises(SystemExit) as exit_:
        karpenter_backup.main()
    return exit_.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def no_cluster(monkeypatch):
    """Any attempt to connect fails the test: the parameters must be refused before."""

    def connect(params, timeout=30):
        raise AssertionError("connected with timeout=%r" % timeout)

    monkeypatch.setattr(kclient, "connect", connect)


@pytest.mark.parametrize(
    "args,needle",
    [
        ({"max_age_days": -1}, "max_age_days must be at least 1, got -1"),
        ({"keep_last": 0}, "keep_last must be at least 1, got 0"),
        ({"request_timeout": 0}, "request_timeout must be a positive number of seconds, got 0"),
        ({"namespace": "Kube_System"}, "namespace 'Kube_System' is not a valid namespace name"),
        ({"state": "restored", "kinds": ["NodePools"]}, "NodePools"),
        ({"state": "restored", "exclude": ["general"]}, "exclude: 'general' is not Kind/name"),
    ],
)
def test_bad_parameters_fail_before_connecting(tmp_path, capsys, no_cluster, args, needle):
    dest = tmp_path / "out"
    rc, out = run_main(dict({"cluster_name": "prod", "dest": str(dest)}, **args), capsys)
    assert rc == 1 and out["failed"] is True and out.get("changed", False) is False
    assert needle in out["msg"], out["msg"]
    if "kinds" in args:  # the argument spec's choices: names the allowed kinds
        assert "ConfigMap, EC2NodeClass, KWOKNodeClass, NodePool, NodeOverlay" in out["msg"]
    assert not os.path.exists(dest)


def test_an_unwritable_dest_fails_before_reading_the_cluster(tmp_path, capsys, monkeypatch):
    reads = []

    class Api:
        def request_summary(self):
            return {"total": len(reads)}

        def __getattr__(self, name):
            reads.append(name)
            raise AssertionError("the cluster was read: %s" % name)

    monkeypatch.setattr(kclient, "connect", lambda params, timeout=30, **kw: Api())
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, out = run_main({"cluster_name": "prod", "dest": str(blocker / "sub")}, capsys)
    assert rc == 1 and "dest %s cannot be created" % (blocker / "sub") in out["msg"]
    assert reads == [] and out["changed"] is False
