#!/usr/bin/env python3
"""Backup benchmark (issue 5): 200 NodePools + 200 EC2NodeClasses + 5,000 NodeClaims.

Compares, in one run on the same cluster, `karpenter_backup` (through ansible-playbook, as users run it)
with the original design's kubectl script (v1 kind names: one `kubectl get <kind> -o yaml` per kind plus
the loop over every Karpenter CRD; medians of 4 alternating runs), then the same with the design's upload
step (`aws s3 sync`, when the AWS CLI is installed) against ours uploading with SSE-KMS to the same moto,
then both again with EKS authentication (the kubeconfig user runs `aws eks get-token`, as every EKS kubeconfig
does; the sandbox's apiserver verifies those tokens against moto's STS), then times a restore into the emptied
cluster. Request counts come
from the apiserver's `apiserver_request_total` metric (all clients), peak memory from GNU time.

With ``--against REV`` it also times this tree's backup playbook against the same playbook of an earlier commit
(a git worktree of REV, same venv, same cluster), alternating run by run and order by order, with certificates and
with EKS authentication: medians of wall time and of CPU time (user + system of ansible-playbook and its module
processes, which the machine's other load moves less than wall time).

It uses its own control-plane-only sandbox (no Karpenter would act on the 5,000 NodeClaims):

    .venv/bin/python bench/backup_bench.py [--nodeclaims 5000] [--against 64c637b [--against-runs 12]]
    # writes bench/results/backup_bench.json
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SANDBOX = os.path.join(ROOT, "sandbox", "sandbox.py")
VENV = os.path.dirname(sys.executable)
STATE = os.path.join(tempfile.gettempdir(), "karpenter-eks-bench-backup")
ENV = dict(os.environ, SANDBOX_STATE=STATE, SANDBOX_PORT_OFFSET="500")


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=kw.pop("env", ENV), **kw)


def kubectl(env, *args, input=None):
    return sh([os.path.join(env["SANDBOX_BIN"], "kubectl"), "--kubeconfig", env["KUBECONFIG"], *args], input=input)


def metrics_total(env):
    """Sum of apiserver_request_total by verb (every client), read with the admin client cert."""
    pki = os.path.join(STATE, "pki")
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
    ctx.load_cert_chain(os.path.join(pki, "admin.crt"), os.path.join(pki, "admin.key"))
    port = json.load(open(env["KUBECONFIG"]))["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1]
    text = urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", context=ctx, timeout=30).read().decode()
    out = {}
    for m in re.finditer(r"^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$", text, re.M):
        verb = re.search(r'verb="([^"]+)"', m.group(1)).group(1)
        out[verb] = out.get(verb, 0) + float(m.group(2))
    return out


def delta(a, b):
    return {k: int(b.get(k, 0) - a.get(k, 0)) for k in sorted(set(a) | set(b)) if b.get(k, 0) - a.get(k, 0)}


def objects(n_pools, n_classes, n_claims):
    for i in range(n_classes):
        yield {
            "apiVersion": "karpenter.k8s.aws/v1",
            "kind": "EC2NodeClass",
            "metadata": {"name": f"bench-{i}"},
            "spec": {
                "role": f"KarpenterNodeRole-{i}",
                "amiSelectorTerms": [{"alias": "al2023@v20250505"}],
                "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "bench"}}],
                "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "bench"}}],
            },
        }
    for i in range(n_pools):
        yield {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": f"bench-{i}"},
            "spec": {
                "template": {
                    "spec": {
                        "nodeClassRef": {
                            "group": "karpenter.k8s.aws",
                            "kind": "EC2NodeClass",
                            "name": f"bench-{i % n_classes}",
                        },
                        "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}],
                    }
                },
                "limits": {"cpu": "1000"},
            },
        }
    for i in range(n_claims):
        yield {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodeClaim",
            "metadata": {"name": f"bench-{i}", "labels": {"karpenter.sh/nodepool": f"bench-{i % n_pools}"}},
            "spec": {
                "nodeClassRef": {
                    "group": "karpenter.k8s.aws",
                    "kind": "EC2NodeClass",
                    "name": f"bench-{i % n_classes}",
                },
                "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}],
            },
        }


def populate(env, docs):
    chunks = [docs[i : i + 250] for i in range(0, len(docs), 250)]

    def apply(chunk):
        kubectl(
            env,
            "apply",
            "--server-side",
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": chunk}),
        )

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(apply, chunks))


def timed(cmd, env):
    """Run cmd under GNU time; returns (seconds, max RSS MB)."""
    t0 = time.monotonic()
    res = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return time.monotonic() - t0, int(res.stderr.strip().splitlines()[-1]) / 1024


def timed_cpu(cmd, env, cwd=None):
    """Run cmd under GNU time; returns (wall seconds, CPU seconds of it and its children)."""
    res = subprocess.run(["/usr/bin/time", "-f", "%e %U %S", *cmd], capture_output=True, text=True, env=env, cwd=cwd)
    if res.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    wall, user, system = (float(x) for x in res.stderr.strip().splitlines()[-1].split())
    return wall, user + system


def against(rev, runs, inv, env, work, eks_kubeconfig):
    """This tree's backup playbook against REV's, alternating; medians of wall and CPU seconds."""
    old = benchlib.worktree(rev)
    trees = {"this_tree": ROOT, rev: old}
    out = {"rev": rev, "runs_each": runs}
    try:
        modes = {"certificates": {}}
        if eks_kubeconfig:
            modes["eks_token_auth"] = {"karpenter_eks_kubeconfig": eks_kubeconfig}
        for mode, extra in modes.items():
            samples = {name: [] for name in trees}
            for i in range(runs):
                order = list(trees) if i % 2 == 0 else list(trees)[::-1]
                for name in order:
                    tree = trees[name]
                    cmd = [
                        os.path.join(VENV, "ansible-playbook"),
                        "-i",
                        inv,
                        os.path.join(tree, "playbooks", "backup.yml"),
                    ]
                    cmd += ["-e", json.dumps(dict(extra, karpenter_backup_dest=tempfile.mkdtemp(dir=work)))]
                    samples[name].append(
                        timed_cpu(cmd, dict(env, ANSIBLE_CONFIG=os.path.join(tree, "ansible.cfg")), tree)
                    )
            out[mode] = benchlib.ab_row(samples, rev)
    finally:
        benchlib.remove_worktree(old)
    return out


# the design's upload step (its CloudWatch metrics snapshot is left out: karpenter_backup takes none)
DESIGN_S3_SYNC = r"""aws s3 sync "$D" "$S3_BUCKET/$(basename "$D")" >/dev/null
"""

DESIGN_SCRIPT = r"""set -e
D="$1"; mkdir -p "$D"
kubectl get nodepools -A -o yaml > "$D/nodepools.yaml"
kubectl get ec2nodeclasses -A -o yaml > "$D/ec2nodeclasses.yaml"
kubectl get configmap -n karpenter -o yaml > "$D/configmaps.yaml"
kubectl get crd | grep karpenter | awk '{print $1}' | while read crd; do
  kubectl get "$crd" -A -o yaml > "$D/${crd}.yaml"
done
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodepools", type=int, default=200)
    ap.add_argument("--ec2nodeclasses", type=int, default=200)
    ap.add_argument("--nodeclaims", type=int, default=5000)
    ap.add_argument("--against", metavar="REV", help="also time REV's backup playbook against this tree's")
    ap.add_argument("--against-runs", type=int, default=12)
    a = ap.parse_args()
    sh([sys.executable, SANDBOX, "reset"])
    sh([sys.executable, SANDBOX, "up", "--control-plane-only"])
    env = dict(ENV, **json.loads(sh([sys.executable, SANDBOX, "env", "--format", "json"]).stdout))
    env["PATH"] = env["SANDBOX_BIN"] + os.pathsep + env["PATH"]
    out = {"objects": {"nodepools": a.nodepools, "ec2nodeclasses": a.ec2nodeclasses, "nodeclaims": a.nodeclaims}}
    try:
        kubectl(env, "create", "namespace", "karpenter")
        t0 = time.monotonic()
        populate(env, list(objects(a.nodepools, a.ec2nodeclasses, a.nodeclaims)))
        out["populate_seconds"] = round(time.monotonic() - t0, 1)
        work = tempfile.mkdtemp(prefix="backup-bench-")
        inv = os.path.join(work, "inventory.yml")
        with open(inv, "w") as f:
            json.dump(
                {
                    "eks_clusters": {
                        "hosts": {
                            "bench": {
                                "ansible_connection": "local",
                                "ansible_python_interpreter": sys.executable,
                                "karpenter_eks_cluster_name": "bench",
                                "karpenter_eks_kubeconfig": env["KUBECONFIG"],
                            }
                        }
                    }
                },
                f,
            )
        ansible_env = dict(env, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))

        playbook = [os.path.join(VENV, "ansible-playbook"), "-i", inv, os.path.join(ROOT, "playbooks", "backup.yml")]

        def run_design(extra_env=None, s3=False, kubeconfig=None):
            script = DESIGN_SCRIPT + (DESIGN_S3_SYNC if s3 else "")
            d = tempfile.mkdtemp(dir=work)
            run_env = dict(env, **(extra_env or {}))
            if kubeconfig:
                run_env["KUBECONFIG"] = kubeconfig
            return timed(["bash", "-c", script, "design", d], run_env)

        def run_ours(extra_vars, kubeconfig=None):
            d = tempfile.mkdtemp(dir=work)
            extra = dict(extra_vars, karpenter_backup_dest=d)
            if kubeconfig:
                extra["karpenter_eks_kubeconfig"] = kubeconfig
            return timed(playbook + ["-e", json.dumps(extra)], ansible_env)

        def medians(design, ours, runs=4):
            """Median seconds of ``runs`` alternating runs of each."""
            d, o = [], []
            while len(d) < runs:
                d.append(design()[0])
                o.append(ours()[0])
            return sorted(d)[len(d) // 2], sorted(o)[len(o) // 2]

        # local destination: the design's kubectl part against the playbook writing a local archive
        m0 = metrics_total(env)
        secs, rss = run_design()
        m1 = metrics_total(env)
        out["design_kubectl_script"] = {"seconds": round(secs, 2), "max_rss_mb": round(rss), "requests": delta(m0, m1)}
        secs, rss = run_ours({})
        m2 = metrics_total(env)
        out["karpenter_backup"] = {"seconds": round(secs, 2), "max_rss_mb": round(rss), "requests": delta(m1, m2)}
        # medians of 3 more runs each, alternating, for the ratio
        design_runs = [out["design_kubectl_script"]["seconds"]]
        ours_runs = [out["karpenter_backup"]["seconds"]]
        for _ in range(3):
            design_runs.append(run_design()[0])
            ours_runs.append(run_ours({})[0])
        out["design_kubectl_script"]["median_seconds"] = round(sorted(design_runs)[len(design_runs) // 2], 2)
        out["karpenter_backup"]["median_seconds"] = round(sorted(ours_runs)[len(ours_runs) // 2], 2)
        out["speedup"] = round(
            out["design_kubectl_script"]["median_seconds"] / out["karpenter_backup"]["median_seconds"], 2
        )

        # where the time goes: ansible-playbook's own start-up (a one-debug-task play on the same inventory) is a
        # floor no module can go under; the rest is the module (AnsiballZ start, imports, LISTs, files, archive)
        noop = os.path.join(work, "noop.yml")
        with open(noop, "w") as f:
            f.write("- hosts: eks_clusters\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug: {msg: x}\n")
        startup = sorted(
            timed([os.path.join(VENV, "ansible-playbook"), "-i", inv, noop], ansible_env)[0] for unused in range(3)
        )[1]
        out["ansible_playbook_startup_seconds"] = round(startup, 2)
        module_secs = out["karpenter_backup"]["median_seconds"] - startup
        out["speedup_module_only"] = round(out["design_kubectl_script"]["median_seconds"] / module_secs, 2)

        # the design's whole script also uploads (aws s3 sync); ours uploads the archive with SSE-KMS. Same moto.
        if shutil.which("aws") and env.get("AWS_ENDPOINT_URL"):
            import boto3

            session = boto3.Session(
                aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", "testing"),
                aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "testing"),
                region_name="us-east-1",
            )
            s3 = session.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
            s3.create_bucket(Bucket="bench-backups")
            s3.put_bucket_versioning(Bucket="bench-backups", VersioningConfiguration={"Status": "Enabled"})
            kms = session.client("kms", endpoint_url=env["AWS_ENDPOINT_URL"])
            key = kms.create_key()["KeyMetadata"]["KeyId"]
            design_s3 = sorted(
                run_design({"S3_BUCKET": "s3://bench-backups/design"}, s3=True)[0] for unused in range(3)
            )[1]
            ours_vars = {
                "karpenter_backup_s3_bucket": "bench-backups",
                "karpenter_backup_kms_key_id": key,
                "karpenter_eks_aws_endpoint_url": env["AWS_ENDPOINT_URL"],
                "karpenter_eks_region": "us-east-1",
            }
            ours_s3 = sorted(run_ours(ours_vars)[0] for unused in range(3))[1]
            out["with_s3_upload"] = {
                "design_script_with_aws_s3_sync_seconds": round(design_s3, 2),
                "karpenter_backup_local_and_s3_sse_kms_seconds": round(ours_s3, 2),
                "speedup": round(design_s3 / ours_s3, 2),
                "speedup_module_only": round(design_s3 / (ours_s3 - startup), 2),
            }

        # EKS authentication, as every EKS kubeconfig (`aws eks update-kubeconfig`) has it: the user is an exec
        # plugin, `aws eks get-token`, run once per kubectl process by the script and once per module run by ours.
        # The sandbox's apiserver checks these tokens against moto's STS like EKS's authenticator does.
        eks_kubeconfig = env.get("SANDBOX_EKS_KUBECONFIG")
        if shutil.which("aws") and eks_kubeconfig and os.path.exists(eks_kubeconfig):
            m5 = metrics_total(env)
            design_eks, ours_eks = medians(
                lambda: run_design(kubeconfig=eks_kubeconfig), lambda: run_ours({}, kubeconfig=eks_kubeconfig)
            )
            m6 = metrics_total(env)
            get_token = sorted(
                timed(["aws", "eks", "get-token", "--cluster-name", "bench"], env)[0] for unused in range(3)
            )[1]
            out["eks_token_auth"] = {
                "design_kubectl_script_seconds": round(design_eks, 2),
                "karpenter_backup_seconds": round(ours_eks, 2),
                "speedup": round(design_eks / ours_eks, 2),
                "aws_eks_get_token_seconds": round(get_token, 2),
                # 3 gets + `kubectl get crd` + one get per Karpenter CRD
                "kubectl_processes_of_the_script": 4
                + sum("karpenter" in n for n in kubectl(env, "get", "crd", "-o", "name").stdout.split()),
                "requests_both_4_runs": delta(m5, m6),
            }
            # ours again with the token from the CLI itself (KARPENTER_EKS_TOKEN_SOURCE=exec) instead of in-process
            cli_env = dict(ansible_env, KARPENTER_EKS_TOKEN_SOURCE="exec")
            ours_cli = sorted(
                timed(
                    playbook
                    + [
                        "-e",
                        json.dumps(
                            {
                                "karpenter_backup_dest": tempfile.mkdtemp(dir=work),
                                "karpenter_eks_kubeconfig": eks_kubeconfig,
                            }
                        ),
                    ],
                    cli_env,
                )[0]
                for unused in range(3)
            )[1]
            out["eks_token_auth"]["karpenter_backup_token_source"] = (
                "in-process (botocore presign, module_utils/kube/eks_token.py)"
            )
            out["eks_token_auth"]["karpenter_backup_with_cli_token_seconds"] = round(ours_cli, 2)
            out["eks_token_auth"]["speedup_with_cli_token"] = round(design_eks / ours_cli, 2)
            if "with_s3_upload" in out:
                design_s3_eks, ours_s3_eks = medians(
                    lambda: run_design({"S3_BUCKET": "s3://bench-backups/design"}, s3=True, kubeconfig=eks_kubeconfig),
                    lambda: run_ours(ours_vars, kubeconfig=eks_kubeconfig),
                    runs=3,
                )
                out["eks_token_auth"]["with_s3_upload"] = {
                    "design_script_with_aws_s3_sync_seconds": round(design_s3_eks, 2),
                    "karpenter_backup_local_and_s3_sse_kms_seconds": round(ours_s3_eks, 2),
                    "speedup": round(design_s3_eks / ours_s3_eks, 2),
                }

        if a.against:
            eks = eks_kubeconfig if eks_kubeconfig and os.path.exists(eks_kubeconfig) else None
            out["against"] = against(a.against, a.against_runs, inv, env, work, eks)

        dest = os.path.join(work, "archives")
        timed(playbook + ["-e", json.dumps({"karpenter_backup_dest": dest})], ansible_env)  # restored below
        kubectl(env, "delete", "nodepools,ec2nodeclasses", "--all", "--wait=false")
        m3 = metrics_total(env)
        secs, rss = timed(
            [
                os.path.join(VENV, "ansible-playbook"),
                "-i",
                inv,
                os.path.join(ROOT, "playbooks", "restore.yml"),
                "-e",
                json.dumps({"karpenter_backup_dest": dest}),
            ],
            ansible_env,
        )
        m4 = metrics_total(env)
        out["restore"] = {"seconds": round(secs, 2), "max_rss_mb": round(rss), "requests": delta(m3, m4)}
        shutil.rmtree(work, ignore_errors=True)
    finally:
        sh([sys.executable, SANDBOX, "down"])
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "backup_bench.json"), "w") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
