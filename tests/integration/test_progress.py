"""Status lines while a long module task runs (the collection's action plugins), as a person watching
``ansible-playbook`` or an AWX job sees them: the default output, on the sandbox's real apiserver and Karpenter."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: An EC2NodeClass whose subnets match nothing (never Ready)
      karpenter_eks.platform.karpenter_ec2nodeclass:
        name: {cls}
        spec:
          role: KarpenterNodeRole-sandbox
          amiSelectorTerms: [{{alias: al2023@v20250505}}]
          subnetSelectorTerms: [{{tags: {{karpenter.sh/discovery: nothing-{cls}}}}}]
          securityGroupSelectorTerms: [{{tags: {{karpenter.sh/discovery: nothing-{cls}}}}}]
    - name: Apply three NodePools and wait for them
      karpenter_eks.platform.karpenter_nodepool:
        wait: true
        wait_timeout: {timeout}
        definitions: "{{{{ pools | from_yaml }}}}"
      vars:
        pools: |
          {{% for i in range(3) %}}
          - apiVersion: karpenter.sh/v1
            kind: NodePool
            metadata: {{name: {cls}-{{{{ i }}}}}}
            spec:
              template:
                spec:
                  nodeClassRef: {{group: karpenter.k8s.aws, kind: EC2NodeClass, name: {cls}}}
                  requirements: [{{key: kubernetes.io/arch, operator: In, values: [amd64]}}]
          {{% endfor %}}
      ignore_errors: true
"""

STATUS = re.compile(r"^\[localhost\] (?P<task>[^:]+): (?P<status>.*) - (?P<secs>\d+) s$")


def run(path, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_STDOUT_CALLBACK", None)
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(path), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    statuses = [m.groupdict() for m in map(STATUS.match, res.stdout.splitlines()) if m]
    return res, statuses


@pytest.fixture
def pools(sandbox, uid, tmp_path):
    cls = "progress-" + uid
    yield cls, tmp_path
    sandbox.kubectl("delete", "nodepools.karpenter.sh", *["%s-%d" % (cls, i) for i in range(3)], check=False)
    sandbox.kubectl("delete", "ec2nodeclasses.karpenter.k8s.aws", cls, "--wait=false", check=False)


def test_a_long_wait_prints_what_it_waits_for(pools):
    cls, tmp_path = pools
    path = tmp_path / "play.yml"
    path.write_text(PLAY.format(cls=cls, timeout=5))
    res, statuses = run(path, "-e", "karpenter_eks_progress_interval=1")
    assert res.returncode == 0, res.stdout[-3000:]  # the wait's failure is ignored
    assert "NodePool not Ready after 5s" in res.stdout
    waiting = [s for s in statuses if s["task"] == "Apply three NodePools and wait for them"]
    names = ", ".join("%s-%d" % (cls, i) for i in range(3))
    expected = "waiting for NodePools to be Ready: 0/3 (waiting for: %s)" % names
    # about one line a second for the 5 s wait: the status the module wrote, with the time since the task started
    assert sum(s["status"] == expected for s in waiting) >= 3, res.stdout[-3000:]
    seconds = [int(s["secs"]) for s in waiting]
    assert seconds == sorted(seconds) and seconds[-1] >= 5


def test_a_quick_task_prints_no_status_line(pools, sandbox):
    cls, tmp_path = pools
    path = tmp_path / "play.yml"
    path.write_text(PLAY.format(cls=cls, timeout=1).replace("wait: true", "wait: false"))
    run(path)  # create them
    res, statuses = run(path)  # the default interval (15 s) is longer than these no-op tasks
    assert res.returncode == 0 and "changed=0" in res.stdout, res.stdout[-3000:]
    assert statuses == [], statuses
    res, statuses = run(path, "-e", "karpenter_eks_progress_interval=0")  # 0 turns them off
    assert res.returncode == 0 and statuses == []
