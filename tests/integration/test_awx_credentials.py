"""The modules with AWX's Kubernetes credential injection: K8S_AUTH_HOST + K8S_AUTH_API_KEY + K8S_AUTH_SSL_CA_CERT.

AWX's "OpenShift or Kubernetes API Bearer Token" credential gives a job no kubeconfig: it exports the API URL,
a bearer token and (when verification is on) a CA file. These tests reproduce exactly that against the sandbox's
real kube-apiserver: a ServiceAccount bound to a ClusterRole limited to Karpenter's objects, a token from the
TokenRequest API (``kubectl create token``), and an ansible-playbook environment with KUBECONFIG and
K8S_AUTH_KUBECONFIG removed and HOME pointed at an empty directory (so no ~/.kube/config can be read).
The apiserver's audit log shows who made the writes: the ServiceAccount, not the sandbox's admin.
"""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

pytestmark = pytest.mark.sandbox
UA = "karpenter-eks-platform/"  # the modules' User-Agent

# What karpenter_info and karpenter_provisioner need, and no more (verbs as RBAC spells them).
RULES = [
    {
        "apiGroups": ["karpenter.sh"],
        "resources": ["nodepools"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {"apiGroups": ["karpenter.sh"], "resources": ["nodeclaims"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": ["karpenter.k8s.aws"],
        "resources": ["ec2nodeclasses"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    # (the NodePool module also reads the node classes its pools reference: the EC2NodeClass rule above covers it)
]

PLAYBOOK = """
- name: Karpenter modules with AWX-injected credentials
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    state: present
  tasks:
    - name: Info
      karpenter_eks.platform.karpenter_info:
      register: info
      when: run_info | default(true) | bool

    - name: NodePool
      karpenter_eks.platform.karpenter_provisioner:
        state: "{{ state }}"
        node_class_ref: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: sandbox}
        definitions:
          - apiVersion: karpenter.sh/v1
            kind: NodePool
            metadata:
              name: "{{ pool }}"
            spec:
              template:
                spec:
                  nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: sandbox}
                  requirements:
                    - {key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}
              limits:
                cpu: "8"
      register: nodepool
      when: pool is defined
"""


def apiserver_url(sandbox):
    with open(os.path.join(sandbox.env["SANDBOX_STATE"], "admin.kubeconfig")) as f:
        kubeconfig = json.load(f)  # the sandbox writes its kubeconfig as JSON (valid YAML)
    return kubeconfig["clusters"][0]["cluster"]["server"]


def awx_env(home, host, token, ca_file):
    """os.environ as an AWX job sees it with a bearer-token credential: no kubeconfig of any kind."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("K8S_AUTH_") and k != "KUBECONFIG"}
    env.update(
        HOME=str(home),
        K8S_AUTH_HOST=host,
        K8S_AUTH_API_KEY=token,
        K8S_AUTH_SSL_CA_CERT=ca_file,
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
        ANSIBLE_LOCAL_TEMP=str(home / ".ansible-tmp"),
    )
    return env


def run(env, playbook, *args, extra_vars=None):
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(playbook), *args]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    try:
        out = json.loads(res.stdout)
    except ValueError:
        raise AssertionError(f"not JSON (rc={res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res.returncode, out


def result(out, name):
    for play in out["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == name:
                return task["hosts"]["localhost"]
    raise KeyError(name)


@pytest.fixture
def service_account(sandbox, uid):
    """(namespace, ServiceAccount name, token) bound to the Karpenter ClusterRole; everything removed after."""
    ns, sa, role = f"awx-cred-{uid}", "awx-job", f"awx-cred-{uid}"
    sandbox.kubectl("create", "namespace", ns)
    try:
        sandbox.kubectl("-n", ns, "create", "serviceaccount", sa)
        sandbox.apply(
            [
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": role},
                    "rules": RULES,
                },
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": role},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                    "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
                },
            ]
        )
        token = sandbox.kubectl("-n", ns, "create", "token", sa, "--duration=15m").stdout.strip()
        assert token.count(".") == 2, "TokenRequest should return a JWT"
        yield ns, sa, token
    finally:
        sandbox.kubectl("delete", "clusterrolebinding,clusterrole", role, "--ignore-not-found", check=False)
        sandbox.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def playbook(tmp_path):
    p = tmp_path / "awx_credentials.yml"
    p.write_text(PLAYBOOK)
    return p


def test_info_and_nodepool_with_injected_bearer_token(sandbox, uid, service_account, home, playbook):
    ns, sa, token = service_account
    env = awx_env(home, apiserver_url(sandbox), token, os.path.join(sandbox.env["SANDBOX_STATE"], "pki", "ca.crt"))
    assert not {"KUBECONFIG", "K8S_AUTH_KUBECONFIG"} & set(env)
    pool = f"awx-cred-{uid}"
    user = f"system:serviceaccount:{ns}:{sa}"
    try:
        # read: what karpenter_info returns equals what the admin sees
        rc, out = run(env, playbook)
        assert rc == 0, json.dumps(out)[-3000:]
        info = result(out, "Info")
        assert not info.get("failed")
        live = sandbox.custom.list_cluster_custom_object("karpenter.sh", "v1", "nodepools")["items"]
        assert {p["name"] for p in info["nodepools"]} == {p["metadata"]["name"] for p in live}
        live_classes = sandbox.custom.list_cluster_custom_object("karpenter.k8s.aws", "v1", "ec2nodeclasses")
        assert {c["name"] for c in info["ec2nodeclasses"]} == {c["metadata"]["name"] for c in live_classes["items"]}
        assert info["requests"]["writes"] == 0 and info["requests"]["list"] >= 1

        # check mode: predicts a create, writes nothing
        mark = sandbox.audit_mark()
        rc, out = run(env, playbook, "--check", extra_vars={"pool": pool, "run_info": False})
        assert rc == 0, json.dumps(out)[-3000:]
        planned = result(out, "NodePool")
        assert planned["changed"] is True
        assert [(r["name"], r["action"]) for r in planned["results"]] == [(pool, "create")]
        assert [e for e in sandbox.writes_since(mark) if (e.get("objectRef") or {}).get("name") == pool] == []

        # real create, as the ServiceAccount (the audit log names the user that wrote it)
        mark = sandbox.audit_mark()
        rc, out = run(env, playbook, extra_vars={"pool": pool, "run_info": False})
        assert rc == 0, json.dumps(out)[-3000:]
        created = result(out, "NodePool")
        assert created["changed"] is True and created["results"][0]["action"] == "create"
        stored = sandbox.custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", pool)
        assert stored["spec"]["limits"] == {"cpu": "8"}
        assert stored["spec"]["template"]["spec"]["nodeClassRef"] == {
            "group": "karpenter.k8s.aws",
            "kind": "EC2NodeClass",
            "name": "sandbox",
        }
        # (the Karpenter controller, which runs as the sandbox's admin, then writes the pool's status)
        writes = [e for e in sandbox.writes_since(mark, UA) if (e.get("objectRef") or {}).get("name") == pool]
        assert writes and {e["user"]["username"] for e in writes} == {user}
        assert all(e["responseStatus"]["code"] < 300 for e in writes)

        # idempotent with the same credentials
        rc, out = run(env, playbook, extra_vars={"pool": pool, "run_info": False})
        assert rc == 0 and result(out, "NodePool")["changed"] is False

        # delete with the same credentials
        rc, out = run(env, playbook, extra_vars={"pool": pool, "run_info": False, "state": "absent"})
        assert rc == 0, json.dumps(out)[-3000:]
        assert result(out, "NodePool")["results"][0]["action"] == "delete"
        gone = sandbox.kubectl("get", "nodepool", pool, "--ignore-not-found", "-o", "name").stdout.strip()
        assert gone == ""
    finally:
        sandbox.kubectl("delete", "nodepool", pool, "--ignore-not-found", "--wait=false", check=False)


def test_wrong_token_fails_with_a_clear_message(sandbox, uid, service_account, home, playbook):
    _ns, _sa, token = service_account
    bad = token[:-8] + ("A" * 8 if not token.endswith("A" * 8) else "B" * 8)  # signature no longer verifies
    env = awx_env(home, apiserver_url(sandbox), bad, os.path.join(sandbox.env["SANDBOX_STATE"], "pki", "ca.crt"))
    mark = sandbox.audit_mark()
    rc, out = run(env, playbook, extra_vars={"pool": f"awx-cred-{uid}"})
    assert rc != 0
    info = result(out, "Info")
    assert info["failed"] is True
    msg = info["msg"]
    assert "401" in msg or "Unauthorized" in msg, msg
    assert "Traceback" not in msg and len(msg) < 2000, msg
    assert [e for e in sandbox.writes_since(mark) if (e.get("objectRef") or {}).get("name") == f"awx-cred-{uid}"] == []


def test_token_without_rbac_for_writes_is_denied_clearly(sandbox, uid, home, playbook):
    """A ServiceAccount without a binding authenticates but is forbidden: the message says so (403), no traceback."""
    ns = f"awx-norbac-{uid}"
    sandbox.kubectl("create", "namespace", ns)
    try:
        sandbox.kubectl("-n", ns, "create", "serviceaccount", "nobody")
        token = sandbox.kubectl("-n", ns, "create", "token", "nobody", "--duration=10m").stdout.strip()
        env = awx_env(home, apiserver_url(sandbox), token, os.path.join(sandbox.env["SANDBOX_STATE"], "pki", "ca.crt"))
        rc, out = run(env, playbook)
        assert rc != 0
        info = result(out, "Info")
        assert info["failed"] is True
        assert "403" in info["msg"] or "forbidden" in info["msg"].lower(), info["msg"]
        assert f"system:serviceaccount:{ns}:nobody" in info["msg"], info["msg"]
        assert "Traceback" not in info["msg"]
    finally:
        sandbox.kubectl("delete", "namespace", ns, "--wait=false", check=False)
