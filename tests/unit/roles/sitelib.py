"""Helpers of tests/unit/roles: playbooks/site.yml against a private moto (tests/awslib.py)."""

from awslib import run_playbook


def run_site(endpoint, *args, extra_vars=None, inventory="inventories/local"):
    """playbooks/site.yml with AWS pointed at ``endpoint`` (module_defaults and env); returns the JSON callback output."""
    evars = dict(extra_vars or {}, karpenter_eks_aws_endpoint_url=endpoint)
    return run_playbook(["playbooks/site.yml", "-i", inventory, *args], endpoint, extra_vars=evars)
