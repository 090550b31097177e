"""Helpers of tests/unit/roles: site.yml runs against a private moto and reading their JSON output."""

import json
import os
import subprocess
import sys

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# ---------------------------------------------------------------- site.yml against a private moto
# The AWS parts of the roles (cluster: KMS key, VPC, IAM, EKS; monitoring: CloudWatch Logs/alarm) run against a moto
# of their own (sandbox/aws_emulator.py on a free 127.0.0.1 port), never the shared sandbox's moto: these tests
# create, re-run and check-run without touching state other tests read.

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


def aws_client(endpoint, service):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def run_site(endpoint, *args, extra_vars=None, inventory="inventories/local"):
    """playbooks/site.yml with AWS pointed at ``endpoint`` (module_defaults and env); returns the JSON callback output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "K8S_AUTH_"))} | AWS_ENV
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
        ANSIBLE_NOCOLOR="1",
    )
    evars = dict(extra_vars or {}, karpenter_eks_aws_endpoint_url=endpoint)
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
        "playbooks/site.yml",
        "-i",
        inventory,
        "-e",
        json.dumps(evars),
        *args,
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    try:
        out = json.loads(res.stdout)
    except ValueError:
        raise AssertionError(
            f"no JSON from ansible-playbook (rc={res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        )
    out["rc"] = res.returncode
    return out


def task_results(out, suffix):
    """Per-host results of the tasks whose name ends with ``suffix`` (role prefix ignored)."""
    return [
        host
        for play in out["plays"]
        for task in play["tasks"]
        if task["task"]["name"].endswith(suffix)
        for host in task["hosts"].values()
    ]


def changed_tasks(out):
    return [
        task["task"]["name"]
        for play in out["plays"]
        for task in play["tasks"]
        if any(h.get("changed") for h in task["hosts"].values())
    ]
