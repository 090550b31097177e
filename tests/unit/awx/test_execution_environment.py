"""execution-environment.yml: `ansible-builder create` writes a complete build context (no container build here).

The definition and the files it names are copied into a temporary tree with the collection tarball that
`ansible-galaxy collection build` makes, so nothing is written into the checkout."""

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)
EE = os.path.join(ROOT, "execution-environment.yml")


def _read(path):
    with open(path) as f:
        return f.read()


@pytest.fixture(scope="module")
def ee():
    with open(EE) as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def galaxy_version():
    return yaml.safe_load(_read(os.path.join(ROOT, "galaxy.yml")))["version"]


@pytest.fixture(scope="module")
def context(tmp_path_factory, ee):
    src = tmp_path_factory.mktemp("ee-src")
    shutil.copy(EE, src / "execution-environment.yml")
    for rel in (ee["dependencies"]["python"], ee["dependencies"]["system"], ee["dependencies"]["galaxy"]):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(ROOT, rel), src / rel)
    subprocess.run(
        [os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(src / "build/ee")],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    ctx = tmp_path_factory.mktemp("ee-context")
    res = subprocess.run(
        [
            os.path.join(BIN, "ansible-builder"),
            "create",
            "-f",
            str(src / "execution-environment.yml"),
            "-c",
            str(ctx),
            "--output-filename",
            "Containerfile",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "No matches" not in res.stdout + res.stderr, "additional_build_files found no collection tarball"
    return ctx


def test_definition_is_v3_with_pinned_ansible(ee):
    assert ee["version"] == 3
    deps = ee["dependencies"]
    assert re.fullmatch(r"ansible-core==2\.\d+\.\d+", deps["ansible_core"]["package_pip"])
    assert re.fullmatch(r"ansible-runner==\d+\.\d+\.\d+", deps["ansible_runner"]["package_pip"])
    assert deps["python"] == "requirements.txt"


def test_containerfile_stages(context, ee):
    cf = _read(context / "Containerfile")
    assert f'ARG EE_BASE_IMAGE="{ee["images"]["base_image"]["name"]}"' in cf
    refs = re.search(r'ARG ANSIBLE_INSTALL_REFS="([^"]*)"', cf).group(1).split()
    assert refs == [
        ee["dependencies"]["ansible_core"]["package_pip"],
        ee["dependencies"]["ansible_runner"]["package_pip"],
    ]
    for stage in ("AS base", "AS galaxy", "AS builder", "AS final"):
        assert stage in cf
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in cf
    assert "introspect --user-pip=requirements.txt --user-bindep=bindep.txt" in cf
    assert "/output/scripts/check_ansible" in cf  # fails the build when ansible/ansible-runner are missing


def test_python_and_system_requirements_are_the_collections(context):
    assert _read(context / "_build/requirements.txt") == _read(os.path.join(ROOT, "requirements.txt"))
    assert _read(context / "_build/bindep.txt") == _read(os.path.join(ROOT, "bindep.txt"))


def test_collections_include_this_collection_from_its_tarball(context, galaxy_version):
    reqs = yaml.safe_load(_read(context / "_build/requirements.yml"))["collections"]
    names = {r["name"]: r for r in reqs}
    tar_name = f"collections/karpenter_eks-platform-{galaxy_version}.tar.gz"
    assert names.get(tar_name, {}).get("type") == "file", f"awx/ee/requirements.yml must name {tar_name}"
    for dep in ("kubernetes.core", "amazon.aws", "community.aws"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", names[dep]["version"]), f"{dep} is not pinned"
    # the pins satisfy galaxy.yml's dependency ranges (ansible-galaxy would refuse otherwise)
    from ansible.galaxy.dependency_resolution.versioning import meets_requirements

    galaxy_deps = yaml.safe_load(_read(os.path.join(ROOT, "galaxy.yml")))["dependencies"]
    for dep, rng in galaxy_deps.items():
        assert meets_requirements(names[dep]["version"], rng), (dep, names[dep]["version"], rng)
    tarball = context / "_build" / tar_name
    with tarfile.open(tarball) as tf:
        manifest = json.load(tf.extractfile("MANIFEST.json"))["collection_info"]
        members = tf.getnames()
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == (
        "karpenter_eks",
        "platform",
        galaxy_version,
    )
    # introspection finds the plugins' Python requirements inside the installed collection
    assert "requirements.txt" in members and "plugins/modules/karpenter_provisioner.py" in members


def test_helm_and_kubectl_are_pinned_and_verified(context):
    cf = _read(context / "Containerfile")
    args = dict(re.findall(r"^ARG (HELM_VERSION|HELM_SHA256|KUBECTL_VERSION|KUBECTL_SHA256)=(\S+)$", cf, re.M))
    assert set(args) == {"HELM_VERSION", "HELM_SHA256", "KUBECTL_VERSION", "KUBECTL_SHA256"}
    assert re.fullmatch(r"[0-9a-f]{64}", args["HELM_SHA256"]) and re.fullmatch(r"[0-9a-f]{64}", args["KUBECTL_SHA256"])
    assert "https://get.helm.sh/helm-v${HELM_VERSION}-linux-amd64.tar.gz" in cf
    assert "https://dl.k8s.io/release/v${KUBECTL_VERSION}/bin/linux/amd64/kubectl" in cf
    assert cf.count("| sha256sum -c -") == 2
    assert "install -m 0755 /tmp/linux-amd64/helm /usr/local/bin/helm" in cf
    assert "install -m 0755 /tmp/kubectl /usr/local/bin/kubectl" in cf
    # the same versions the sandbox builds and the tests run (sandbox/go/*/go.mod)
    helm_mod = _read(os.path.join(ROOT, "sandbox/go/helm/go.mod"))
    assert f"helm.sh/helm/v3 v{args['HELM_VERSION']}" in helm_mod
    k8s_mod = _read(os.path.join(ROOT, "sandbox/go/k8s/go.mod"))
    minor = args["KUBECTL_VERSION"].split(".", 1)[1]
    assert f"k8s.io/kubectl => k8s.io/kubectl v0.{minor}" in k8s_mod
    # the AWS CLI comes from PyPI with the plugins' requirements (introspection), not from a download step
    assert "awscli" not in cf
    reqs = [line.split("#", 1)[0].strip() for line in _read(os.path.join(ROOT, "requirements.txt")).splitlines()]
    assert any(re.match(r"awscli\b", r) for r in reqs), "the EE needs `aws` for the kubeconfig's exec user"


def test_no_role_or_playbook_needs_the_aws_cli():
    """The EE's AWS CLI serves the kubeconfig's exec user only: nothing the job templates run shells out to `aws`."""
    import re

    offenders = []
    for top in ("roles", "playbooks"):
        for dirpath, _dirs, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if not name.endswith((".yml", ".yaml", ".j2", ".sh")) or os.sep + "meta" in dirpath:
                    continue  # meta/argument_specs.yml is documentation
                path = os.path.join(dirpath, name)
                for n, line in enumerate(_read(path).splitlines(), 1):
                    # `aws eks update-kubeconfig` appears in messages telling the user how to make a kubeconfig
                    code = line.split("#", 1)[0].replace("aws eks update-kubeconfig", "")
                    if re.search(r"(^|[\s'\"`;|&(])aws\s+(eks|iam|ec2|sqs|s3|sts|events|ssm|cloudwatch|logs)\b", code):
                        offenders.append(f"{os.path.relpath(path, ROOT)}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_introspection_collects_the_collection_requirements(tmp_path):
    """`ansible-builder introspect` over this collection + its dependencies (as the builder stage runs it)."""
    import ansible_collections.kubernetes.core as kc

    site = os.path.dirname(os.path.dirname(os.path.dirname(list(kc.__path__)[0])))
    base = tmp_path / "ansible_collections"
    for ns, name, src in (
        ("karpenter_eks", "platform", ROOT),
        ("kubernetes", "core", os.path.join(site, "ansible_collections/kubernetes/core")),
        ("amazon", "aws", os.path.join(site, "ansible_collections/amazon/aws")),
        ("community", "aws", os.path.join(site, "ansible_collections/community/aws")),
    ):
        (base / ns).mkdir(parents=True, exist_ok=True)
        os.symlink(src, base / ns / name)
    res = subprocess.run(
        [os.path.join(BIN, "ansible-builder"), "introspect", "--sanitize", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    python = yaml.safe_load(res.stdout)["python"]
    ours = [line.split("#")[0].strip() for line in python if line.endswith("# from collection karpenter_eks.platform")]
    for pkg in ("kubernetes", "boto3", "botocore", "cel-python", "jsonpatch"):
        assert any(re.match(rf"{re.escape(pkg)}\b", r) for r in ours), (pkg, python)
    assert any(line.endswith("# from collection kubernetes.core") for line in python)
