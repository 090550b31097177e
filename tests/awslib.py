"""Test helpers shared by tests/unit/roles and tests/integration: a private moto server and ansible-playbook runs.

* ``moto_server`` starts sandbox/aws_emulator.py on a free 127.0.0.1 port, for one test module: the roles' AWS
  tasks create, re-run and check-run against it without touching state other tests read.
* ``run_playbook`` runs ansible-playbook with AWS pointed at that server (environment and module_defaults) and
  returns the ansible.posix.json callback's output plus ``rc``; ``task_results``/``changed_tasks`` read it.
"""

import contextlib
import json
import os
import subprocess
import sys
import time

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


@contextlib.contextmanager
def emulator_process(workdir, port=0, extra_args=(), env=None):
    """sandbox/aws_emulator.py as a process on 127.0.0.1:``port`` (0: a free one), working directory ``workdir``,
    log in ``workdir``/emulator.log; yields (process, ready-file info) once it is ready, stops it afterwards."""
    ready, log = os.path.join(workdir, "ready.json"), os.path.join(workdir, "emulator.log")
    script = os.path.join(ROOT, "sandbox", "aws_emulator.py")
    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | AWS_ENV
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, script, "--port", str(port), "--ready-file", ready, *extra_args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )
    try:
        deadline = time.monotonic() + 90
        while not os.path.exists(ready):
            if proc.poll() is not None or time.monotonic() > deadline:
                state = f"exited {proc.returncode}" if proc.poll() is not None else "not ready after 90 s"
                with open(log) as f:
                    raise AssertionError(f"aws_emulator {state}:\n{f.read()}")
            time.sleep(0.2)
        with open(ready) as f:
            info = json.load(f)
        assert info["endpoint"].startswith("http://127.0.0.1:")
        yield proc, info
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def moto_server(workdir, extra_env=None):
    """A moto server of the caller only (working directory ``workdir``); yields its http://127.0.0.1:<port>."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | AWS_ENV | dict(extra_env or {})
    with emulator_process(workdir, env=env) as (unused_proc, info):
        yield info["endpoint"]


def run_playbook(args, endpoint, extra_vars=None):
    """``ansible-playbook <args> -e <extra_vars>`` (from the checkout) with AWS at ``endpoint``; JSON output + rc."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "K8S_AUTH_"))} | AWS_ENV
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
        ANSIBLE_NOCOLOR="1",
    )
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), *args, "-e", json.dumps(extra_vars or {})]
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
    """Names (without the role prefix) of the tasks that changed on some host."""
    return [
        task["task"]["name"].split(" : ", 1)[-1]
        for play in out["plays"]
        for task in play["tasks"]
        if any(h.get("changed") for h in task["hosts"].values())
    ]


def role_copy(role, tmp_path, play, replace=None, template="templates/prometheusrule.yml.j2"):
    """Copy the collection's role ``role`` to ``tmp_path``/roles, optionally replacing ``replace[0]`` by
    ``replace[1]`` in its ``template`` (it must occur), and write ``play`` beside it; returns the play's path."""
    import shutil

    shutil.copytree(os.path.join(ROOT, "roles", role), tmp_path / "roles" / role)
    if replace:
        path = tmp_path / "roles" / role / template
        text = path.read_text()
        assert replace[0] in text, (replace[0], str(path))
        path.write_text(text.replace(replace[0], replace[1]))
    (tmp_path / "play.yml").write_text(play)
    return str(tmp_path / "play.yml")
