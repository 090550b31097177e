"""`ansible-galaxy collection build` ships the collection and nothing else (no tests, caches, state, binaries),
the checkout's top-level site.yml parses, and an installed collection runs its site playbook by FQCN."""

import os
import re
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
FORBIDDEN_TOP = {
    "tests",
    "sandbox",
    "bench",
    ".sandbox",
    ".venv",
    ".collections",
    "build",
    "scripts",
    ".ci",
    "hack",
    "molecule",
    "extensions",
    "site.yml",  # the checkout's entry point; an installed collection runs karpenter_eks.platform.site
}
DOC_REF = re.compile(r"\bdocs/[A-Za-z0-9_.-]+\.md\b")
PLAYS = (
    "Cluster prerequisites (AWS)",
    "Namespace security",
    "Karpenter controller, EC2NodeClasses and NodePools",
    "Monitoring",
)


def _env(**extra):
    """The environment of a user shell: no ANSIBLE_CONFIG/ANSIBLE_COLLECTIONS_PATH inherited from the test runner."""
    env = {k: v for k, v in os.environ.items() if k not in ("ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH")}
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def _run(args, cwd, env):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, "%s failed (rc %d):\n%s\n%s" % (args, proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    _run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(out), ROOT], ROOT, _env())
    (path,) = out.glob("karpenter_eks-platform-*.tar.gz")
    return path


def test_tarball_contains_only_the_collection(tarball):
    with tarfile.open(tarball) as tf:
        members = tf.getmembers()
        names = [m.name for m in members]
        tops = {n.split("/", 1)[0] for n in names}
        assert not tops & FORBIDDEN_TOP, sorted(tops & FORBIDDEN_TOP)
        assert "MANIFEST.json" in names and "plugins/modules/karpenter_provisioner.py" in names
        assert "plugins/module_utils/karpenter/crds/nodepool_v1.py" in names
        assert "playbooks/site.yml" in names  # karpenter_eks.platform.site
        # the documents role specs (ansible-doc -t role), module messages and comments point users at
        docs = {"docs/karpenter-v1.md", "docs/sandbox.md", "docs/development.md"}
        assert docs <= set(names), sorted(docs - set(names))
        referenced = {}
        for m in members:
            if m.isfile() and not m.name.endswith((".json", ".gz")):
                for ref in DOC_REF.findall(tf.extractfile(m).read().decode("utf-8", "replace")):
                    referenced.setdefault(ref, m.name)
        missing = {ref: where for ref, where in referenced.items() if ref not in names}
        assert not missing, "documents referenced but not shipped: %s" % missing
        for m in members:
            if m.isfile():
                head = tf.extractfile(m).read(4)
                assert head != b"\x7fELF", f"binary in the tarball: {m.name}"
                assert not m.name.endswith((".key", ".pyc")), m.name
    assert tarball.stat().st_size < 5 * 1024 * 1024


@pytest.mark.parametrize("inventory", ["inventories/prod", "inventories/local"])
def test_checkout_site_yml_parses(inventory):
    """`ansible-playbook site.yml -i inventories/<env>` from the checkout root (ansible.cfg of the checkout)."""
    playbook = [os.path.join(BIN, "ansible-playbook"), "site.yml", "-i", inventory]
    env = _env(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    assert "playbook: site.yml" in _run(playbook + ["--syntax-check"], ROOT, env)
    tasks = _run(playbook + ["--list-tasks"], ROOT, env)
    for play in PLAYS:
        assert play in tasks, tasks
    for role in ("cluster", "security", "karpenter", "monitoring"):
        assert "karpenter_eks.platform.%s : " % role in tasks, tasks


def test_installed_collection_runs_site_by_fqcn(tarball, tmp_path):
    """Install the tarball as a user would and run `ansible-playbook karpenter_eks.platform.site` outside the checkout."""
    collections = tmp_path / "collections"
    cfg = tmp_path / "ansible.cfg"  # not the checkout's ansible.cfg (it puts the checkout on the collection path)
    cfg.write_text("[defaults]\n")
    env = _env(ANSIBLE_CONFIG=str(cfg))
    _run(
        [
            os.path.join(BIN, "ansible-galaxy"),
            "collection",
            "install",
            "--no-deps",
            "--force",  # also when another copy is installed elsewhere (ansible-lint puts one in ~/.ansible)
            "-p",
            str(collections),
            str(tarball),
        ],
        tmp_path,
        env,
    )
    installed = collections / "ansible_collections" / "karpenter_eks" / "platform"
    assert (installed / "playbooks" / "site.yml").is_file()
    # kubernetes.core, amazon.aws and community.aws come from the venv (the PyPI ansible bundle)
    import ansible_collections.kubernetes.core as kcore

    bundled = os.path.dirname(os.path.dirname(os.path.dirname(list(kcore.__path__)[0])))
    assert bundled != ROOT and not bundled.startswith(os.path.join(ROOT, ".collections"))
    env["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join([str(collections), bundled])
    playbook = [
        os.path.join(BIN, "ansible-playbook"),
        "karpenter_eks.platform.site",
        "-i",
        str(installed / "inventories" / "prod"),
    ]
    out = _run(playbook + ["--syntax-check"], tmp_path, env)
    assert "playbook: %s" % (installed / "playbooks" / "site.yml") in out, out  # the installed copy, not the checkout
    tasks = _run(playbook + ["--list-tasks"], tmp_path, env)
    for play in PLAYS:
        assert play in tasks, tasks
