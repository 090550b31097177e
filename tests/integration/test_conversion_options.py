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


BATCH_PLAY = """
- hosts: localhost
  gather_facts: false
  vars:
    legacy:
      - apiVersion: karpenter.k8s.aws/v1alpha1
        kind: AWSNodeTemplate
        metadata: {name: "batch-%(uid)s"}
        spec:
          subnetSelector: {karpenter.sh/discovery: sandbox}
          securityGroupSelector: {karpenter.sh/discovery: sandbox}
      - apiVersion: karpenter.sh/v1alpha5
        kind: Provisioner
        metadata: {name: "batch-%(uid)s"}
        spec:
          providerRef: {name: "batch-%(uid)s"}
          kubeletConfiguration: {maxPods: 42}
          requirements: [{key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}]
  tasks:
    - name: The node class converted from the template, with the Provisioner's kubelet settings
      karpenter_eks.platform.node_template:
        definitions: "{{ legacy }}"
        conversion: {node_role: KarpenterNodeRole-sandbox, ami_version: v20250505}
    - name: The NodePool converted from the Provisioner
      karpenter_eks.platform.karpenter_provisioner:
        definitions: "{{ legacy }}"
        conversion: {node_role: KarpenterNodeRole-sandbox, ami_version: v20250505}
"""


def test_kubelet_settings_move_to_the_node_class_of_the_same_batch(sandbox, uid, tmp_path):
    """A Provisioner's kubeletConfiguration belongs on its EC2NodeClass in v1: with its AWSNodeTemplate in the
    same ``definitions`` the batch is converted together, so both modules apply (before: an error per object)."""
    play = tmp_path / "batch.yml"
    play.write_text(BATCH_PLAY % {"uid": uid})
    name = f"batch-{uid}"
    try:
        rc, out = sandbox.playbook(str(play), check=False)
        tasks = out["plays"][0]["tasks"]
        assert rc == 0, [t["hosts"]["localhost"].get("msg") for t in tasks]
        nc = sandbox.custom.get_cluster_custom_object("karpenter.k8s.aws", "v1", "ec2nodeclasses", name)
        assert nc["spec"]["kubelet"] == {"maxPods": 42} and nc["spec"]["role"] == "KarpenterNodeRole-sandbox"
        np = sandbox.custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", name)
        assert np["spec"]["template"]["spec"]["nodeClassRef"]["name"] == name
        assert "kubelet" not in np["spec"]["template"]["spec"]
        # each module reports the other kind it converted but did not apply
        others = [t["hosts"]["localhost"]["converted_other_kinds"] for t in tasks]
        assert [[o["kind"] for o in x] for x in others] == [["NodePool"], ["EC2NodeClass"]]
        mark = sandbox.audit_mark()
        rc, again = sandbox.playbook(str(play), check=False)
        assert rc == 0 and sandbox.writes_since(mark, UA) == []  # converged: a second run writes nothing
    finally:
        sandbox.kubectl("delete", "nodepools.karpenter.sh", name, check=False)
        sandbox.kubectl("delete", "ec2nodeclasses.karpenter.k8s.aws", name, "--wait=false", check=False)
