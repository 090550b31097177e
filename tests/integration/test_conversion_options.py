"""The modules' ``conversion`` options reach the legacy converter (issue 4): a v1alpha1 AWSNodeTemplate without an
instance profile (v1alpha5 took it from a global setting that no longer exists) converts only when the user names
the node role, and the AMI alias version comes from ``conversion.ami_version``. Check mode: no write."""

import json

UA = "karpenter-eks-platform/"

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Legacy node template
      karpenter_eks.platform.node_template:
        definitions:
          - apiVersion: karpenter.k8s.aws/v1alpha1
            kind: AWSNodeTemplate
            metadata: {name: "legacy-%(uid)s"}
            spec:
              subnetSelector: {karpenter.sh/discovery: sandbox}
              securityGroupSelector: {karpenter.sh/discovery: sandbox}
        conversion: %(conversion)s
      register: converted
"""


def _run(sandbox, tmp_path, uid, conversion):
    play = tmp_path / "legacy.yml"
    play.write_text(PLAY % {"uid": uid, "conversion": json.dumps(conversion)})
    mark = sandbox.audit_mark()
    rc, out = sandbox.playbook(str(play), "--check", "--diff", check=False)
    assert sandbox.writes_since(mark, UA) == [], "check mode must send no write request"
    return rc, out["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_conversion_options_reach_the_converter(sandbox, uid, tmp_path):
    rc, res = _run(sandbox, tmp_path, uid, {"node_role": "KarpenterNodeRole-sandbox", "ami_version": "v20250505"})
    assert rc == 0, res.get("msg")
    after = res["diff"][0]["after"]
    assert after["kind"] == "EC2NodeClass" and after["metadata"]["name"] == f"legacy-{uid}"
    assert after["spec"]["role"] == "KarpenterNodeRole-sandbox"
    assert after["spec"]["amiSelectorTerms"] == [{"alias": "al2@v20250505"}]
    assert res["results"][0]["action"] == "create"


def test_without_a_role_the_conversion_error_names_the_option(sandbox, uid, tmp_path):
    rc, res = _run(sandbox, tmp_path, uid, {})
    assert rc != 0
    text = res["msg"] + json.dumps(res.get("errors"))
    assert "node_role" in text or "instance_profile" in text, text
