"""Planted secrets, every input path (issue 18): no configured secret in results, -vvv logs, archives or bundles.

Known marker secrets go into every way a credential reaches the modules: a kubeconfig file's token (a real,
working ServiceAccount token for the sandbox), a kubeconfig dict whose token fails authentication, K8S_AUTH_API_KEY,
AWS keys (AWS_SECRET_ACCESS_KEY in the environment and the modules' secret-key parameters), an EC2NodeClass's user
data (``aws configure set aws_secret_access_key ...``) and ConfigMaps in the Karpenter namespace. Real playbooks run
through ``ansible-playbook -vvv`` with the default callback; then stdout/stderr, the registered results (written to
a file), the backup archive's members and the diagnose bundle's files are searched for every marker.
"""

import json
import os
import subprocess
import sys
import tarfile

import yaml
from conftest import ROOT

NS = "karpenter"


def _markers(uid):
    return {
        "kubeconfig_token": None,  # the minted ServiceAccount token, set below
        "kubeconfig_dict_token": f"kcdict{uid}Tk9mQ2xvbmdzZWNyZXQ",
        "k8s_auth_api_key": None,  # a second minted token
        "api_key_param": f"apikey{uid}Zm9vYmFyYmF6cXV4",
        "aws_env_secret": f"awsenv{uid}/wJalrXUtnFEMIK7MDENGbPxRfiCY",
        "aws_param_secret": f"awsparam{uid}+bPxRfiCYEXAMPLEKEY",
        "user_data_secret": f"userdata{uid}/K7MDENGbPxRfiCYEXAMPLEKEY",
        "configmap_secret": f"cmsecret{uid}hunter2hunter2",
        "configmap_script_secret": f"cmscript{uid}pgpw",
    }


def _token_kubeconfig(sandbox, path, uid):
    """A kubeconfig file that authenticates with a real ServiceAccount token (cluster-admin) minted for this test."""
    sa = f"secrets-test-{uid}"
    sandbox.kubectl("create", "serviceaccount", sa, "-n", "kube-system")
    sandbox.kubectl(
        "create", "clusterrolebinding", sa, "--clusterrole=cluster-admin", f"--serviceaccount=kube-system:{sa}"
    )
    token = sandbox.kubectl("create", "token", sa, "-n", "kube-system", "--duration=1h").stdout.strip()
    token2 = sandbox.kubectl("create", "token", sa, "-n", "kube-system", "--duration=1h").stdout.strip()
    assert token and token2 and token != token2
    admin = yaml.safe_load(open(sandbox.env["KUBECONFIG"]))
    cluster = admin["clusters"][0]["cluster"]
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": cluster}],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": sa}}],
        "current-context": "sandbox",
    }
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return token, token2, cluster, sa


def _play(m, uid, tmp, cluster):
    pool, nc, cm = f"sec-{uid}", f"sec-{uid}", f"sec-{uid}"
    bad_kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": {"token": m["kubeconfig_dict_token"]}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    user_data = (
        "#!/bin/bash\nset -e\naws configure set aws_secret_access_key %s\n/etc/eks/bootstrap.sh\n"
        % m["user_data_secret"]
    )
    tasks = [
        {
            "name": "EC2NodeClass with a credential in its user data",
            "karpenter_eks.platform.node_template": {
                "name": nc,
                "spec": {
                    "role": "KarpenterNodeRole-sandbox",
                    "amiSelectorTerms": [{"alias": "al2023@latest"}],
                    "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
                    "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
                    "userData": user_data,
                },
            },
            "register": "r_node_template",
        },
        {
            "name": "NodePool",
            "karpenter_eks.platform.karpenter_provisioner": {
                "definitions": [
                    {
                        "apiVersion": "karpenter.sh/v1",
                        "kind": "NodePool",
                        "metadata": {"name": pool},
                        "spec": {
                            "template": {
                                "spec": {
                                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": nc},
                                    "requirements": [
                                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
                                    ],
                                }
                            },
                            "limits": {"cpu": "0"},
                        },
                    }
                ]
            },
            "register": "r_provisioner",
        },
        {
            "name": "ConfigMaps with secret-looking values in the Karpenter namespace",
            "karpenter_eks.platform.k8s_objects": {
                "definitions": [
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": cm, "namespace": NS},
                        "data": {
                            "db_password": m["configmap_secret"],
                            "init.sh": "PGPASSWORD=%s psql -h db" % m["configmap_script_secret"],
                            "region": "us-east-1",
                        },
                    },
                ]
            },
            "register": "r_objects",
        },
        {"name": "Info", "karpenter_eks.platform.karpenter_info": {}, "register": "r_info"},
        {
            "name": "Backup (a secret key parameter the local backup does not need)",
            "karpenter_eks.platform.karpenter_backup": {
                "cluster_name": f"sec{uid}",
                "dest": os.path.join(tmp, "backups"),
                "include_helm": False,
                "secret_key": m["aws_param_secret"],
                "access_key": "testing",
            },
            "register": "r_backup",
        },
        {
            "name": "Diagnose with a bundle",
            "karpenter_eks.platform.karpenter_diagnose": {
                "scenario": "controller",
                "health_url": os.environ.get("KARPENTER_HEALTH_URL"),
                "metrics_url": os.environ.get("KARPENTER_METRICS_URL"),
                "output_dir": os.path.join(tmp, "bundle"),
            },
            "register": "r_diagnose",
            "ignore_errors": True,
        },
        {
            "name": "Cost report with AWS keys as parameters and in the environment",
            "karpenter_eks.platform.karpenter_cost_report": {
                "cluster_name": f"sec{uid}",
                "start": "2026-07-01",
                "end": "2026-07-02",
                "json_path": os.path.join(tmp, "cost.json"),
                "endpoint_url": os.environ.get("AWS_ENDPOINT_URL"),
                "region": os.environ.get("AWS_REGION", "us-east-1"),
                "aws_access_key": "testing",
                "aws_secret_key": m["aws_param_secret"],
            },
            "register": "r_cost",
            "ignore_errors": True,
        },
        {
            "name": "A kubeconfig dict whose token the apiserver refuses",
            "karpenter_eks.platform.karpenter_info": {"kubeconfig": bad_kubeconfig},
            "register": "r_bad_kubeconfig",
            "ignore_errors": True,
        },
        {
            "name": "Registered results to a file",
            "ansible.builtin.copy": {
                "dest": os.path.join(tmp, "results.json"),
                "mode": "0600",
                "content": "{{ {'node_template': r_node_template, 'provisioner': r_provisioner, 'objects': r_objects,"
                " 'info': r_info, 'backup': r_backup, 'diagnose': r_diagnose, 'cost': r_cost,"
                " 'bad_kubeconfig': r_bad_kubeconfig} | to_nice_json }}",
            },
        },
    ]
    return [{"name": "Planted secrets", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]


def _api_key_play(m, tmp):
    """K8S_AUTH_API_KEY (a working token) from the environment, and an api_key parameter the apiserver refuses."""
    tasks = [
        {"name": "Info with K8S_AUTH_API_KEY", "karpenter_eks.platform.karpenter_info": {}, "register": "r_env"},
        {
            "name": "Info with an api_key the apiserver refuses",
            "karpenter_eks.platform.karpenter_info": {"api_key": m["api_key_param"]},
            "register": "r_param",
            "ignore_errors": True,
        },
        {
            "name": "Registered results to a file",
            "ansible.builtin.copy": {
                "dest": os.path.join(tmp, "results-api-key.json"),
                "mode": "0600",
                "content": "{{ {'env': r_env, 'param': r_param} | to_nice_json }}",
            },
        },
    ]
    return [{"name": "API key", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]


def _cleanup(sandbox, uid, sa):
    sandbox.kubectl("delete", "nodepool", f"sec-{uid}", "--ignore-not-found", check=False)
    sandbox.kubectl("delete", "ec2nodeclass", f"sec-{uid}", "--ignore-not-found", "--wait=false", check=False)
    sandbox.kubectl("delete", "configmap", f"sec-{uid}", "-n", NS, "--ignore-not-found", check=False)
    if sa:
        sandbox.kubectl("delete", "clusterrolebinding", sa, "--ignore-not-found", check=False)
        sandbox.kubectl("delete", "serviceaccount", sa, "-n", "kube-system", "--ignore-not-found", check=False)


def _files(root):
    for d, subdirs, files in os.walk(root):
        del subdirs
        for n in files:
            yield os.path.join(d, n)


def test_no_planted_secret_leaks(sandbox, uid, tmp_path):
    tmp = str(tmp_path)
    m = _markers(uid)
    sa = None
    try:
        kubeconfig = os.path.join(tmp, "token.kubeconfig")
        m["kubeconfig_token"], m["k8s_auth_api_key"], cluster, sa = _token_kubeconfig(sandbox, kubeconfig, uid)
        # credentials in the environment of ansible-playbook (as CI and AWX credentials inject them); a task's
        # `environment:` keyword is not used: Ansible itself prints it in the -vvv EXEC line
        base = dict(
            os.environ,
            ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
            ANSIBLE_INJECT_INVOCATION="true",
            ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY=m["aws_env_secret"],
        )
        for k in ("KUBECONFIG", "K8S_AUTH_KUBECONFIG", "K8S_AUTH_API_KEY", "K8S_AUTH_HOST"):
            base.pop(k, None)
        runs = [
            (_play(m, uid, tmp, cluster), dict(base, K8S_AUTH_KUBECONFIG=kubeconfig, KUBECONFIG=kubeconfig)),
            (
                _api_key_play(m, tmp),
                dict(
                    base,
                    K8S_AUTH_HOST=cluster["server"],
                    K8S_AUTH_API_KEY=m["k8s_auth_api_key"],
                    K8S_AUTH_VERIFY_SSL="false",
                    KUBECONFIG=os.path.join(tmp, "missing.kubeconfig"),
                ),
            ),
        ]
        log = ""
        for i, (plays, env) in enumerate(runs):
            play = os.path.join(tmp, "play%d.yml" % i)
            with open(play, "w") as f:
                yaml.safe_dump(plays, f, sort_keys=False)
            res = subprocess.run(
                [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-vvv", play],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
                check=False,
            )
            with open(os.path.join(tmp, "ansible%d.log" % i), "w") as f:
                f.write(res.stdout + res.stderr)
            assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
            log += res.stdout + res.stderr
        results = json.loads(open(os.path.join(tmp, "results.json")).read())
        results_api_key = json.loads(open(os.path.join(tmp, "results-api-key.json")).read())
        assert not results_api_key["env"].get("failed"), results_api_key["env"].get("msg")
        assert results_api_key["param"]["failed"]

        # the runs did what they were asked (so the checks below looked at real output)
        for key in ("node_template", "provisioner", "objects", "info", "backup"):
            assert not results[key].get("failed"), (key, results[key].get("msg"))
        assert results["bad_kubeconfig"]["failed"]
        assert "Unauthorized" in results["bad_kubeconfig"]["msg"] or "401" in results["bad_kubeconfig"]["msg"]
        archive = results["backup"]["archive"]["path"]
        members = {}
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                if member.isfile():
                    members[member.name] = tar.extractfile(member).read().decode("utf-8", "replace")
        configmaps = members["resources/10-configmaps.yaml"]
        assert f"sec-{uid}" in configmaps and "us-east-1" in configmaps  # backed up, non-secrets kept
        assert f"name: sec-{uid}" in members["resources/20-ec2nodeclasses.yaml"]
        bundle = os.path.join(tmp, "bundle")
        bundle_files = {p: open(p, errors="replace").read() for p in _files(bundle)}
        assert bundle_files, "the diagnose task wrote no bundle: %s" % results["diagnose"].get("msg")

        places = {"ansible-playbook -vvv output": log, "registered results": json.dumps([results, results_api_key])}
        places.update({"archive " + k: v for k, v in members.items()})
        places.update({"bundle " + os.path.relpath(k, bundle): v for k, v in bundle_files.items()})
        if os.path.exists(os.path.join(tmp, "cost.json")):
            places["cost report"] = open(os.path.join(tmp, "cost.json")).read()
        leaks = [
            "%s in %s" % (name, where) for where, text in places.items() for name, marker in m.items() if marker in text
        ]
        assert leaks == [], leaks
    finally:
        _cleanup(sandbox, uid, sa)
