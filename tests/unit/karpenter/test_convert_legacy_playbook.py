"""playbooks/convert_legacy.yml run by ansible-playbook as a user runs it (by its FQCN, from the folder holding the
old manifests, relative src/dest): one broken file does not stop the others, every report entry names its file,
userData keeps its bytes, the conversion options reach the output, the exit status follows
convert_legacy_fail_on_error. Offline: nothing is applied."""

import os
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
PLAYBOOK = "karpenter_eks.platform.convert_legacy"

GOOD_ALPHA = """\
apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata:
  name: general
spec:
  requirements:
    - key: node.kubernetes.io/instance-type
      operator: In
      values: ["m5.large", "m5.xlarge"]
  limits:
    resources:
      cpu: "1000"
  ttlSecondsAfterEmpty: 30
  providerRef:
    name: default
---
apiVersion: karpenter.k8s.aws/v1alpha1
kind: AWSNodeTemplate
metadata:
  name: default
spec:
  amiFamily: AL2023
  subnetSelector:
    karpenter.sh/discovery: prod
  securityGroupSelector:
    karpenter.sh/discovery: prod
  instanceProfile: KarpenterNodeInstanceProfile-prod
  userData: |
    [settings.kubernetes]
    max-pods = 110
"""
GOOD_ALPHA_NODETEMPLATE_LINE = 17  # where document 2 of GOOD_ALPHA starts

GOOD_BETA = """\
apiVersion: karpenter.sh/v1beta1
kind: NodePool
metadata:
  name: batch
spec:
  template:
    spec:
      nodeClassRef:
        name: batch
      requirements:
        - key: karpenter.k8s.aws/instance-category
          operator: In
          values: ["c"]
  disruption:
    consolidationPolicy: WhenUnderutilized
    expireAfter: 168h
---
apiVersion: karpenter.k8s.aws/v1beta1
kind: EC2NodeClass
metadata:
  name: batch
spec:
  amiFamily: AL2023
  role: KarpenterNodeRole-prod
  subnetSelectorTerms:
    - tags: {karpenter.sh/discovery: prod}
  securityGroupSelectorTerms:
    - tags: {karpenter.sh/discovery: prod}
  userData: |-
    #!/bin/bash
    echo no newline at the end"""

BROKEN = """\
apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata:
  name: broken: yes
spec: {}
"""
BROKEN_LINE = 4

INVALID = """\
apiVersion: karpenter.k8s.aws/v1alpha1
kind: AWSNodeTemplate
metadata:
  name: fine
spec:
  subnetSelector: {karpenter.sh/discovery: prod}
  securityGroupSelector: {karpenter.sh/discovery: prod}
  instanceProfile: KarpenterNodeInstanceProfile-prod
---
# a weight that is not a number: this object is not converted, so the whole file is not written
apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata:
  name: invalid
spec:
  weight: heavy
  providerRef:
    name: fine
"""
INVALID_PROVISIONER_LINE = 11  # its first node (after the comment)


def run(cwd, *extra_vars):
    """``ansible-playbook karpenter_eks.platform.convert_legacy -e src=old/ -e dest=v1 ...`` in ``cwd`` with the
    checkout's ansible.cfg (which finds this checkout as the collection) and the implicit localhost."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["ANSIBLE_LOCAL_TEMP"] = str(cwd / ".ansible-tmp")
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), PLAYBOOK]
    for var in ("src=old/", "dest=v1") + extra_vars:
        cmd += ["-e", var]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def write(folder, files):
    for name, text in files.items():
        path = folder / "old" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())


def docs(path):
    return list(yaml.safe_load_all(path.read_text()))


def report(folder):
    return yaml.safe_load((folder / "v1" / "conversion-report.yml").read_text())


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two good files (one in a sub-folder), one that is not YAML, one with an object that cannot be converted;
    an output of the broken file left from an earlier run."""
    tmp = tmp_path_factory.mktemp("convert")
    write(
        tmp,
        {
            "good-alpha.yaml": GOOD_ALPHA,
            "team/good-beta.yml": GOOD_BETA,
            "broken.yaml": BROKEN,
            "invalid.yaml": INVALID,
        },
    )
    (tmp / "v1").mkdir()
    (tmp / "v1" / "broken.yaml").write_text("# converted by an earlier run\n")
    return tmp


@pytest.fixture(scope="module")
def first_run(folder):
    return run(folder)


def test_good_files_are_written_and_converted(folder, first_run):
    alpha = docs(folder / "v1" / "good-alpha.yaml")
    assert [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in alpha] == [
        ("karpenter.sh/v1", "NodePool", "general"),
        ("karpenter.k8s.aws/v1", "EC2NodeClass", "default"),
    ]
    assert alpha[0]["spec"]["limits"] == {"cpu": "1000"}
    requirements = alpha[0]["spec"]["template"]["spec"]["requirements"]
    assert {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]} in requirements  # alpha default
    assert alpha[0]["spec"]["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s"}
    assert alpha[0]["spec"]["template"]["spec"]["nodeClassRef"] == {
        "group": "karpenter.k8s.aws",
        "kind": "EC2NodeClass",
        "name": "default",
    }
    assert alpha[1]["spec"]["amiSelectorTerms"] == [{"alias": "al2023@latest"}]
    assert alpha[1]["spec"]["instanceProfile"] == "KarpenterNodeInstanceProfile-prod"

    beta = docs(folder / "v1" / "team__good-beta.yml")  # a sub-folder's file: its path with __
    assert [(d["apiVersion"], d["kind"]) for d in beta] == [
        ("karpenter.sh/v1", "NodePool"),
        ("karpenter.k8s.aws/v1", "EC2NodeClass"),
    ]
    assert beta[0]["spec"]["template"]["spec"]["expireAfter"] == "168h"
    assert beta[0]["spec"]["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
    assert beta[1]["spec"]["role"] == "KarpenterNodeRole-prod"


def test_user_data_keeps_its_bytes(folder, first_run):
    """The userData block is the last thing in both files: lookup('file') stripped the file's final newline, and
    with it the one the clip block (|) keeps."""
    alpha = docs(folder / "v1" / "good-alpha.yaml")
    assert alpha[1]["spec"]["userData"] == "[settings.kubernetes]\nmax-pods = 110\n"
    beta = docs(folder / "v1" / "team__good-beta.yml")
    assert beta[1]["spec"]["userData"] == "#!/bin/bash\necho no newline at the end"


def test_broken_files_are_not_written(folder, first_run):
    written = sorted(p.name for p in (folder / "v1").iterdir())
    assert written == ["conversion-report.yml", "good-alpha.yaml", "team__good-beta.yml"]  # earlier broken.yaml gone


def test_every_report_entry_names_its_file_and_document(folder, first_run):
    entries = report(folder)
    files = {"old/good-alpha.yaml", "old/team/good-beta.yml", "old/broken.yaml", "old/invalid.yaml"}
    assert {e["file"] for e in entries} == files
    assert all(e["text"].startswith(e["file"] + ":") for e in entries)
    alpha = [e for e in entries if e["file"] == "old/good-alpha.yaml"]
    assert not [e for e in alpha if e["severity"] == "error"]
    # each entry points at the document of its object
    by_object = {(e["object"], e["document"], e["line"]) for e in alpha}
    assert ("Provisioner/general", 1, 1) in by_object
    assert ("AWSNodeTemplate/default", 2, GOOD_ALPHA_NODETEMPLATE_LINE) in by_object
    assert {(o, d) for o, d, _line in by_object} <= {("Provisioner/general", 1), ("AWSNodeTemplate/default", 2)}


def test_unparseable_and_invalid_files_are_reported(folder, first_run):
    entries = report(folder)
    broken = [e for e in entries if e["file"] == "old/broken.yaml"]
    assert len(broken) == 1
    assert broken[0]["severity"] == "error" and broken[0]["rule"] == "yaml" and broken[0]["line"] == BROKEN_LINE
    assert "mapping values are not allowed" in broken[0]["message"]

    invalid = [e for e in entries if e["file"] == "old/invalid.yaml" and e["severity"] == "error"]
    assert [(e["object"], e["path"], e["rule"], e["document"], e["line"]) for e in invalid] == [
        ("Provisioner/invalid", "spec.weight", "type", 2, INVALID_PROVISIONER_LINE)
    ]


def test_the_run_fails_after_writing_the_good_files(first_run):
    rc, out = first_run
    assert rc == 2, out[-3000:]  # a failed task
    assert "2 of 4 file(s) not converted" in out
    assert "old/broken.yaml:%d: not valid YAML" % BROKEN_LINE in out
    assert "old/invalid.yaml:%d (document 2): Provisioner/invalid: spec.weight" % INVALID_PROVISIONER_LINE in out


def test_fail_on_error_false_ends_successfully(folder, first_run):
    (folder / "v1" / "good-alpha.yaml").unlink()
    (folder / "v1" / "invalid.yaml").write_text("# converted by an earlier run\n")
    rc, out = run(folder, "convert_legacy_fail_on_error=false")
    assert rc == 0, out[-3000:]
    assert "2 of 4 file(s) written into v1" in out and "old/invalid.yaml" in out
    written = sorted(p.name for p in (folder / "v1").iterdir())
    assert written == ["conversion-report.yml", "good-alpha.yaml", "team__good-beta.yml"]


OPTIONS_ALPHA = """\
apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata:
  name: general
spec:
  providerRef:
    name: noprofile
---
apiVersion: karpenter.k8s.aws/v1alpha1
kind: AWSNodeTemplate
metadata:
  name: noprofile
spec:
  amiFamily: AL2023
  subnetSelector: {karpenter.sh/discovery: prod}
  securityGroupSelector: {karpenter.sh/discovery: prod}
"""
OPTIONS_AL2 = """\
apiVersion: karpenter.k8s.aws/v1alpha1
kind: AWSNodeTemplate
metadata:
  name: al2
spec:
  amiFamily: AL2
  instanceProfile: KarpenterNodeInstanceProfile-prod
  subnetSelector: {karpenter.sh/discovery: prod}
  securityGroupSelector: {karpenter.sh/discovery: prod}
"""


def test_conversion_options_reach_the_output(tmp_path):
    write(tmp_path, {"alpha.yaml": OPTIONS_ALPHA, "al2.yaml": OPTIONS_AL2})
    rc, out = run(
        tmp_path,
        "ami_version=v20240807",
        "instance_profile=ProfileFromOption",  # alpha.yaml's template has none: an error without it
        "ignore_alpha_defaults=true",  # a string on the command line, as users pass it
        "kubernetes_version=1.33",  # AL2 is only a warning without it
    )
    assert rc == 2, out[-3000:]  # al2.yaml cannot be converted for 1.33
    entries = report(tmp_path)
    assert {e["file"] for e in entries} == {"old/alpha.yaml", "old/al2.yaml"}
    assert not [e for e in entries if e["file"] == "old/alpha.yaml" and e["severity"] == "error"]
    nodepool, nodeclass = docs(tmp_path / "v1" / "alpha.yaml")
    assert nodeclass["spec"]["instanceProfile"] == "ProfileFromOption"
    assert nodeclass["spec"]["amiSelectorTerms"] == [{"alias": "al2023@v20240807"}]
    assert nodepool["spec"]["template"]["spec"]["requirements"] == []  # the alpha defaults are not written out
    al2_errors = [e for e in entries if e["file"] == "old/al2.yaml" and e["severity"] == "error"]
    assert [(e["object"], e["path"], e["rule"]) for e in al2_errors] == [
        ("AWSNodeTemplate/al2", "spec.amiFamily", "behaviour")
    ]
    assert not (tmp_path / "v1" / "al2.yaml").exists()


@pytest.mark.parametrize(
    "extra, message",
    [(("src=missing/",), "src missing/ is not a folder"), (("kubernetes_version=latest",), "usage: ")],
    ids=["no-src-folder", "bad-kubernetes-version"],
)
def test_bad_arguments_stop_before_anything_is_written(tmp_path, extra, message):
    write(tmp_path, {"alpha.yaml": OPTIONS_ALPHA})
    rc, out = run(tmp_path, *extra)  # a later -e wins
    assert rc == 2 and message in out, out[-3000:]
    assert not (tmp_path / "v1").exists()
