"""The module layer (karpenter_module.py, objects_module.py): a module's main() run as Ansible runs it, its JSON
output read back. The API below it is a real KubeApi over a scripted connection (kubefakes)."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import client as kclient
from ansible_collections.karpenter_eks.platform.plugins.modules import karpenter_provisioner
from kubefakes import Stream, direct_api, incomplete_read


def run_main(module, args, capsys):
    """(rc, parsed JSON output) of module.main() with ``args``."""
    with patch_module_args(args), pytest.raises(SystemExit) as exit_:
        module.main()
    return exit_.value.code, json.loads(capsys.readouterr().out)


def nodepool_list(*names):
    items = [
        {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": n, "resourceVersion": "9", "labels": {"app.kubernetes.io/managed-by": "x"}},
            "spec": {},
        }
        for n in names
    ]
    return (200, json.dumps({"metadata": {"resourceVersion": "10"}, "items": items}).encode())


def test_a_wait_that_breaks_after_the_delete_fails_with_changed_and_what_was_written(monkeypatch, capsys):
    script = [nodepool_list("a"), (200, b'{"items": []}'), (200, b"{}")] + [Stream(error=incomplete_read())] * 50
    api, conn, _ = direct_api(script)
    monkeypatch.setattr(kclient, "connect", lambda params, timeout=30: api)
    rc, out = run_main(
        karpenter_provisioner, {"name": "a", "state": "absent", "wait": True, "wait_timeout": 30}, capsys
    )
    assert rc == 1 and out["failed"] is True and out["changed"] is True
    assert "IncompleteRead" in out["msg"] and "broken and not re-established" in out["msg"]
    assert out["written"] == ["a"] and out["results"][0]["action"] == "delete"
    assert out["requests"]["delete"] == 1 and "diff" not in out
