"""Every AWX job template of awx/configs, run the way AWX runs a job: ansible-runner on a private data directory.

What AWX does at job start, and what this test does instead:
  * project sync          -> a copy of the repository's tracked files in <pdd>/project (the playbooks' cwd)
  * execution environment -> this collection installed from its `ansible-galaxy collection build` tarball into a
                             collections dir (+ the bundled kubernetes.core/amazon.aws/community.aws), HOME empty
  * SCM inventory source  -> `ansible-inventory --list --export` of inventories/<env>/hosts.yml + group_vars,
                             written as the job's inventory file (here inventories/local for every environment: the
                             sandbox is the only cluster; per-environment templates differ only in inventory and
                             credentials, checked in tests/unit/awx, so each template entry runs once)
  * credentials           -> the credential types' injectors rendered as AWX renders them (tests/unit/awx/awxlib.py):
                             the kubeconfig as a file in <pdd>/env whose path goes to K8S_AUTH_KUBECONFIG, AWS_*
                             for moto. KUBECONFIG, K8S_AUTH_* and AWS_* of the test process are removed first.
                             The kubeconfig is the one `aws eks update-kubeconfig` writes (an `aws eks get-token`
                             exec user, verified by the sandbox as EKS does), as AWX users have it.
  * EE's PATH             -> the Python environment's bin (ansible, and `aws` from requirements.txt), helm/kubectl,
                             /usr/bin and /bin: no other AWS CLI, so Helm and kubernetes.core use the EE's.
  * survey                -> extra vars from the survey defaults (+ answers for required questions without one)
  * job type / diff mode  -> --check / --diff

Templates whose playbook does not exist yet are skipped with the playbook's name. Runtime: one site.yml run
(idempotent after the integration tier, ~1 min), the rest are seconds to a minute each.
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import uuid

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "unit", "awx"))
import awxlib  # noqa: E402

pytestmark = pytest.mark.sandbox
BIN = os.path.dirname(sys.executable)
CONFIG = awxlib.load_config()
ENTRIES = awxlib.plain(CONFIG["karpenter_eks_awx_job_templates"])
RUN_ID = uuid.uuid4().hex[:6]
BUCKET = f"karpenter-eks-awx-{RUN_ID}"

# Answers an operator must give (required questions without a default).
ANSWERS = {
    "backup": {"karpenter_backup_s3_bucket": BUCKET},
    "restore": {"karpenter_backup_s3_bucket": BUCKET},
    # the drill refuses to run unconfirmed (the survey default); here it drills on what the site template applied
    "drill disaster recovery": {"dr_drill_confirm": "true"},
}
# inventories/local points karpenter_eks_kubeconfig at the sandbox's admin kubeconfig for CLI use; under AWX the
# credential supplies the kubeconfig (K8S_AUTH_KUBECONFIG), as for dev/staging/prod, which never set it.
DROP_FROM_LOCAL_INVENTORY = {"karpenter_eks_kubeconfig"}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """AWX's project sync: the tracked (and new, not ignored) files of the repository."""
    dest = tmp_path_factory.mktemp("awx-project") / "project"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for f in filter(None, files):
        src = os.path.join(ROOT, f.decode())
        if os.path.isfile(src) and not f.startswith((b"sandbox/", b"bench/")):
            os.makedirs(os.path.join(dest, os.path.dirname(f.decode())), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, f.decode()))
    return str(dest)


@pytest.fixture(scope="module")
def ee_collections(tmp_path_factory):
    """The EE's collections: this collection from its tarball, the others from the `ansible` bundle."""
    tmp = tmp_path_factory.mktemp("awx-ee")
    galaxy = os.path.join(BIN, "ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", "--force", "--output-path", str(tmp / "dist"), ROOT], check=True,
                   capture_output=True, cwd=ROOT)  # fmt: skip
    (tarball,) = (tmp / "dist").glob("karpenter_eks-platform-*.tar.gz")
    subprocess.run(
        [galaxy, "collection", "install", "--no-deps", "-p", str(tmp / "collections"), str(tarball)],
        check=True,
        capture_output=True,
        env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp / "collections")),
    )
    import ansible_collections.kubernetes.core as kc

    site = os.path.dirname(os.path.dirname(os.path.dirname(list(kc.__path__)[0])))
    return f"{tmp / 'collections'}:{site}"


@pytest.fixture(scope="module")
def inventory(project, tmp_path_factory):
    """AWX's SCM inventory import of inventories/local, written as AWX writes a job's inventory: an executable
    script printing the JSON (awx/main/tasks/jobs.py build_inventory), parsed by the project's ansible.cfg."""
    res = subprocess.run(
        [os.path.join(BIN, "ansible-inventory"), "-i", "inventories/local/hosts.yml", "--list", "--export"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(res.stdout)
    for group in data.values():
        if isinstance(group, dict):
            for var in DROP_FROM_LOCAL_INVENTORY:
                (group.get("vars") or {}).pop(var, None)
    assert "sandbox" in data["eks_clusters"]["hosts"]
    script = "#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(data)
    probe = tmp_path_factory.mktemp("awx-inventory") / "hosts"
    probe.write_text(script)
    probe.chmod(0o700)
    graph = subprocess.run(
        [os.path.join(BIN, "ansible-inventory"), "-i", str(probe), "--graph"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    if "sandbox" not in graph.stdout:
        pytest.fail(
            "the project's ansible.cfg cannot read the inventory AWX gives a job (an executable script): add "
            "ansible.builtin.script to [inventory] enable_plugins, else every AWX job runs on no host.\n"
            + graph.stderr[:400]
        )
    return script


@pytest.fixture(scope="module")
def backup_bucket(sandbox):
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=sandbox.env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


def ee_path(sandbox):
    """The execution environment's PATH: its Python's bin (ansible-*, aws), helm and kubectl, the system's bins."""
    path = os.pathsep.join([BIN, sandbox.env["SANDBOX_BIN"], "/usr/bin", "/bin"])
    assert shutil.which("aws", path=path) == os.path.join(BIN, "aws"), "the EE's aws is the one of requirements.txt"
    return path


def run_template(entry, sandbox, project, ee_collections, inventory, tmp_path, monkeypatch):
    """One AWX job for ``entry`` on the sandbox: returns the ansible_runner Runner."""
    import ansible_runner

    pdd = tmp_path / "pdd"
    (pdd / "inventory").mkdir(parents=True)
    os.symlink(project, pdd / "project")
    (pdd / "inventory" / "hosts").write_text(inventory)
    (pdd / "inventory" / "hosts").chmod(0o700)
    with open(sandbox.env["SANDBOX_EKS_KUBECONFIG"]) as f:
        kubeconfig = f.read()

    env = {}
    kube_env, _ = awxlib.inject_credential(awxlib.credential_type(CONFIG, "kubeconfig"), {"kubeconfig": kubeconfig},
                                           str(pdd))  # fmt: skip
    aws_env, _ = awxlib.inject_credential(
        awxlib.credential_type(CONFIG, "aws"),
        {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1",
         "endpoint_url": sandbox.env["AWS_ENDPOINT_URL"]},
        str(pdd),
    )  # fmt: skip
    env.update(kube_env, **aws_env)
    assert open(env["K8S_AUTH_KUBECONFIG"]).read() == kubeconfig and env["K8S_AUTH_KUBECONFIG"].startswith(str(pdd))

    # nothing of the test process's own credentials leaks into the job
    for var in list(os.environ):
        if var.startswith(("K8S_AUTH_", "AWS_", "KUBECONFIG", "ANSIBLE_")):
            monkeypatch.delenv(var)
    home = tmp_path / "home"
    home.mkdir()
    env.update(
        HOME=str(home),  # no ~/.kube/config, ~/.aws
        PATH=ee_path(sandbox),
        ANSIBLE_COLLECTIONS_PATH=ee_collections,
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_FORCE_COLOR="0",
        # status lines every half second while a module of the collection runs (the default is 15 s): the jobs
        # below show that they reach AWX's job output (ansible-runner "verbose" events)
        KARPENTER_EKS_PROGRESS_INTERVAL="0.5",
    )
    extravars = dict(entry.get("extra_vars", {}))
    extravars.update(awxlib.survey_extra_vars(entry["survey"], ANSWERS.get(entry["name"])))
    if entry["name"] in CHECKS and CHECKS[entry["name"]] is _check_runbook:
        # an inventory variable in AWX: keep the job's files in S3 too (SSE-KMS), checked by _check_runbook
        extravars["karpenter_eks_artifacts_s3_bucket"] = BUCKET
    cmdline = []
    if entry["job_type"] == "check":
        cmdline.append("--check")
    if entry.get("diff_mode"):
        cmdline.append("--diff")
    return ansible_runner.run(
        private_data_dir=str(pdd),
        playbook=entry["playbook"],
        inventory=str(pdd / "inventory" / "hosts"),
        extravars=extravars,
        envvars=env,
        cmdline=" ".join(cmdline) or None,
        quiet=True,
        timeout=900,
    )


def _stdout(r):
    return r.stdout.read()[-6000:]


# Bugs found by running a template as AWX would (survey defaults only) in playbooks owned elsewhere:
# {template name: reason}. Strict xfail: the test fails as soon as the bug is fixed, so the entry is removed then.
KNOWN_BUGS = {}


def _params():
    for e in ENTRIES:
        marks = [pytest.mark.xfail(reason=KNOWN_BUGS[e["name"]], strict=True)] if e["name"] in KNOWN_BUGS else []
        yield pytest.param(e, id=e["name"], marks=marks)


@pytest.mark.parametrize("entry", list(_params()))
def test_job_template_runs_like_awx(
    entry, sandbox, project, ee_collections, inventory, backup_bucket, tmp_path, monkeypatch
):
    if not os.path.exists(os.path.join(ROOT, entry["playbook"])):
        pytest.skip(f"{entry['playbook']} does not exist yet (job template {entry['name']!r})")
    if entry["playbook"].endswith("runbooks/undo.yml"):
        monkeypatch.setitem(ANSWERS, entry["name"], {"runbook_undo_file": _undo_file(sandbox, tmp_path)})
    storm = entry["playbook"].endswith(("spot_reintroduction.yml", "spot_interruption.yml")) and _storm_in_window(
        sandbox
    )
    r = run_template(entry, sandbox, project, ee_collections, inventory, tmp_path, monkeypatch)
    if storm and entry["playbook"].endswith("spot_interruption.yml"):
        # a storm is an incident: under AWX runbook_fail_on_incident is on, so the diagnosis job is red
        assert r.status == "failed" and "INCIDENT (spot_storm)" in _stdout(r), _stdout(r)
        return
    if storm:
        # the sandbox's Karpenter handled real spot interruptions in the runbook's window (other tests send them):
        # refusing to bring spot back is the runbook's right answer, and the job must say so and fail (red job)
        assert r.status == "failed" and "Not reintroducing spot" in _stdout(r), _stdout(r)
        return
    assert r.status == "successful" and r.rc == 0, f"{entry['name']}: {r.status} rc={r.rc}\n{_stdout(r)}"
    stats = r.stats
    hosts = set(stats["ok"]) | set(stats["changed"])
    assert hosts, f"{entry['name']}: no host ran"
    assert not stats["failures"] and not stats["dark"], stats
    expected = {"playbooks/whatif.yml": {"localhost"}}.get(entry["playbook"], {"sandbox"})
    assert hosts == expected, hosts
    CHECKS.get(entry["name"], lambda *a: None)(entry, r, backup_bucket)


def _undo_file(sandbox, tmp_path):
    """An undo file as a runbook writes it ({name: NodePool}) holding the live spec of a NodePool site.yml applied."""
    pools = sandbox.custom.list_cluster_custom_object(
        "karpenter.sh", "v1", "nodepools", label_selector="app.kubernetes.io/managed-by=karpenter_eks.platform"
    )["items"]
    assert pools, "site.yml applied no NodePool"
    np = pools[0]
    meta = {"name": np["metadata"]["name"], "labels": np["metadata"].get("labels") or {}}
    path = tmp_path / "bundle" / "previous-nodepools.json"
    path.parent.mkdir()
    path.write_text(json.dumps({meta["name"]: {"apiVersion": np["apiVersion"], "kind": np["kind"], "metadata": meta,
                                               "spec": np["spec"]}}))  # fmt: skip
    return str(path)


def _storm_in_window(sandbox, window=900, threshold=3):
    """The spot runbooks' storm rule: at least ``threshold`` SpotInterrupted events in the last ``window`` seconds."""
    import datetime

    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=window)
    evs = sandbox.core.list_event_for_all_namespaces(field_selector="reason=SpotInterrupted").items
    times = [e.last_timestamp or e.event_time or e.metadata.creation_timestamp for e in evs]
    return sum(1 for t in times if t and t >= since) >= threshold


# ---------------------------------------------------------------- per-template expectations
def _status_lines(r):
    """The action plugins' status lines in the job's output (events AWX shows as they come)."""
    line = re.compile(r"^\[sandbox\] (?P<task>[^:]+): (?P<status>.*) - \d+ s$")
    return [
        m.groupdict()
        for e in r.events
        if e["event"] == "verbose"
        for m in [line.match(re.sub(r"\x1b\[[0-9;]*m", "", e.get("stdout") or "").strip())]
        if m
    ]


def _check_backup(entry, r, s3):
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert any(k.startswith("karpenter-backups/") for k in keys), keys
    # the backup task said what it was doing while it ran
    statuses = _status_lines(r)
    assert statuses, [e.get("stdout") for e in r.events if e["event"] == "verbose"][-20:]


def _check_restore(entry, r, s3):
    assert entry["job_type"] == "check", "restore defaults to a dry run"
    # check mode: the report names the archive; nothing was written (the module's check mode is tested elsewhere)
    assert "karpenter-" in _stdout(r)


def _check_site(entry, r, s3):
    assert not r.stats["failures"]
    tasks = {e["event_data"].get("task") for e in r.events if e["event"] == "runner_on_ok"}
    assert any("NodePool" in (t or "") for t in tasks), "the karpenter role ran"


def _check_runbook(entry, r, s3):
    extravars = awxlib.survey_extra_vars(entry["survey"])
    assert extravars.get("runbook_remediate") == "false"
    changed = [e for e in r.events if e["event"] == "runner_on_ok" and e["event_data"]["res"].get("changed")]
    changed = [e["event_data"]["task"] for e in changed if "bundle" not in e["event_data"]["task"].lower()]
    assert not [t for t in changed if "Remediate" in t or "Change" in t], f"diagnosis only, yet changed: {changed}"
    # under ansible-runner the bundle goes to the job's artifact directory (AWX_ISOLATED_DATA_DIR), and the run
    # lists every file it wrote there
    (listed,) = [
        e["event_data"]["res"]["msg"]
        for e in r.events
        if e["event"] == "runner_on_ok" and e["event_data"].get("task") == "Files written by this run"
    ]
    root = os.path.join(r.config.artifact_dir, "karpenter-eks") + os.sep
    assert listed and all(p.startswith(root) and os.path.isfile(p) for p in listed), (root, listed)
    assert any(p.endswith("/diagnosis.md") for p in listed), listed
    # ... and uploads them under one prefix per job, each object encrypted with SSE-KMS
    (uris,) = [
        e["event_data"]["res"]["msg"]
        for e in r.events
        if e["event"] == "runner_on_ok" and e["event_data"].get("task") == "Files uploaded to S3 by this run"
    ]
    assert len(uris) == len(listed) and all(u.startswith(f"s3://{BUCKET}/karpenter-eks/") for u in uris), uris
    for uri in uris:
        head = s3.head_object(Bucket=BUCKET, Key=uri.split("/", 3)[3])
        assert head["ServerSideEncryption"] == "aws:kms", (uri, head)


def _check_undo(entry, r, s3):
    assert entry["job_type"] == "check"
    (applied,) = [
        e["event_data"]["res"]
        for e in r.events
        if e["event"] == "runner_on_ok" and e["event_data"].get("task") == "Apply the previous NodePool specs"
    ]
    assert applied["results"], applied


CHECKS = {
    "site": _check_site,
    "backup": _check_backup,
    "restore": _check_restore,
    "runbook provisioning failure": _check_runbook,
    "runbook controller failure": _check_runbook,
    "runbook spot interruption storm": _check_runbook,
    "runbook undo": _check_undo,
}


def test_restore_runs_after_backup():
    """The parametrised order (backup before restore) is what makes restore find an archive."""
    names = [e["name"] for e in ENTRIES]
    assert names.index("backup") < names.index("restore")


def test_inventory_is_imported_with_its_group_vars(inventory):
    data = json.loads(ast.literal_eval(inventory.split("print(", 1)[1].rsplit(")", 1)[0]))  # the script literal
    allvars = data["all"].get("vars") or {}
    assert allvars.get("karpenter_eks_environment") == "local"
    assert "karpenter_nodepools" in allvars and "karpenter_eks_kubeconfig" not in allvars
    assert yaml.safe_dump(allvars)  # plain data, as AWX stores it
