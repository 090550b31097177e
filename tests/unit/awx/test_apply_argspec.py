"""awx/apply.yml: every awx.awx task, rendered for every loop item the way ansible-playbook renders it, is valid for
the real awx.awx 24.6.1 argument spec (types, choices, required, mutually exclusive, ...), and the objects it
references (organization, project, inventories, credentials, EE, templates) are created before they are used."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import awxlib  # noqa: E402

SECRETS = {
    "karpenter_eks_awx_secrets": {
        env: {
            "kubeconfig": "apiVersion: v1\nkind: Config\n",
            "host": "https://example.invalid",
            "api_key": "t",
            "ssl_ca_cert": "-----BEGIN CERTIFICATE-----",
            "aws_access_key_id": "AKIA",
            "aws_secret_access_key": "s",
        }
        for env in ("dev", "staging", "prod", "local")
    },
    "karpenter_eks_awx_backup_bucket": "acme-karpenter-backups",
}


def render_tasks(extra=None):
    """[(module, [rendered args per loop item], task)] for the tasks of awx/apply.yml."""
    play = awxlib.apply_play()
    variables = awxlib.load_config(dict(SECRETS, playbook_dir=awxlib.AWX_DIR, **(extra or {})))
    out = []
    for task in play["tasks"]:
        (module,) = [k for k in task if "." in k and k.split(".")[0] in ("awx", "ansible")]
        items = awxlib.render(task["loop"], variables) if "loop" in task else [None]
        args = []
        for item in items:
            v = dict(variables, item=item) if "loop" in task else dict(variables)
            for name, value in (task.get("vars") or {}).items():  # task vars, rendered as Ansible would (lazily)
                v[name] = awxlib.render(value, v)
            when = task.get("when")
            if when and not awxlib.render(awxlib.trusted("{{ " + when.strip() + " }}"), v):
                continue  # skipped, as ansible-playbook would
            args.append(awxlib.render(task[module], v))
        out.append((module, args, task))
    return out


@pytest.fixture(scope="module")
def rendered_tasks():
    return render_tasks()


def test_an_environment_can_assume_a_role():
    """``aws: role`` gives that environment the assume-role credential type with the role and the source keys; the
    other environments keep the access-key type."""
    config = awxlib.load_config()
    creds = dict(config["karpenter_eks_awx_environment_credentials"], prod={"kubernetes": "kubeconfig", "aws": "role"})
    secrets = {env: dict(v) for env, v in SECRETS["karpenter_eks_awx_secrets"].items()}
    secrets["prod"]["aws_role_arn"] = "arn:aws:iam::123456789012:role/deployer"
    tasks = render_tasks({"karpenter_eks_awx_environment_credentials": creds, "karpenter_eks_awx_secrets": secrets})
    (aws_task,) = [args for module, args, task in tasks if task["name"].startswith("AWS credentials")]
    by_env = {a["name"].split()[-2]: a for a in aws_task}
    role_type = awxlib.credential_type(config, "aws_role")["name"]
    assert by_env["prod"]["credential_type"] == role_type
    assert by_env["prod"]["inputs"]["role_arn"] == "arn:aws:iam::123456789012:role/deployer"
    assert by_env["prod"]["inputs"]["access_key_id"] == "AKIA"
    assert by_env["dev"]["credential_type"] == awxlib.credential_type(config, "aws")["name"]
    assert "role_arn" not in by_env["dev"]["inputs"]


def _validate(name, params):
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    spec, kwargs = awxlib.module_argument_spec(name)
    kwargs = {
        k: v
        for k, v in kwargs.items()
        if k in ("mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by")
    }
    result = ArgumentSpecValidator(spec, **kwargs).validate(awxlib.plain(params))
    return [str(e) for e in result.errors]


def test_every_awx_task_is_valid_for_the_module_argument_spec(rendered_tasks):
    checked = 0
    for module, args_list, task in rendered_tasks:
        if not module.startswith("awx.awx."):
            continue
        for args in args_list:
            errors = _validate(module.split(".")[-1], args)
            assert not errors, f"{task['name']} ({module}): {errors}\nargs: {awxlib.plain(args)}"
            checked += 1
    assert checked >= 20


def test_module_defaults_are_controller_auth_options():
    play = awxlib.apply_play()
    defaults = play["module_defaults"]["group/awx.awx.controller"]
    assert set(defaults) <= set(awxlib.auth_argument_spec())
    # the group exists in awx.awx's meta/runtime.yml and holds every module the play uses
    import yaml

    with open(os.path.join(awxlib.awx_collection_path(), "ansible_collections/awx/awx/meta/runtime.yml")) as f:
        group = set(yaml.safe_load(f)["action_groups"]["controller"])
    used = {k.split(".")[-1] for t in play["tasks"] for k in t if k.startswith("awx.awx.")}
    assert used <= group, used - group


def test_a_wrong_argument_is_caught():
    """The check is not vacuous: a typo, a bad choice and a wrong type are all reported."""
    assert _validate("job_template", {"name": "x", "playbok": "site.yml"})
    assert _validate("job_template", {"name": "x", "job_type": "scan"})
    assert _validate("schedule", {"name": "x", "extra_data": "not a dict"})
    assert not _validate("job_template", {"name": "x", "job_type": "check", "survey_spec": {}})


def test_references_are_created_before_use(rendered_tasks):
    created = {}
    for module, args_list, _ in rendered_tasks:
        kind = module.split(".")[-1]
        for args in args_list:
            a = awxlib.plain(args)
            for ref_kind, names in (
                ("organization", [a.get("organization")]),
                ("project", [a.get("project"), a.get("source_project")]),
                ("inventory", [a.get("inventory")]),
                ("credential", a.get("credentials", [])),
                ("credential_type", [a.get("credential_type")]),
                ("execution_environment", [a.get("execution_environment"), a.get("default_environment")]),
                ("job_template", [a.get("unified_job_template")]),
            ):
                for n in names:
                    if n and ref_kind != kind:
                        assert n in created.get(ref_kind, set()), f"{kind} {a['name']!r} uses {ref_kind} {n!r} first"
            if kind != "assert":
                created.setdefault(kind, set()).add(a["name"])
    existing = [t for t in awxlib.job_templates() if os.path.isfile(os.path.join(awxlib.ROOT, t["playbook"]))]
    assert created["job_template"] == {t["name"] for t in existing}
    assert len(created["schedule"]) == 3  # nightly backup: dev, staging, prod


def test_survey_specs_are_valid_awx_surveys(rendered_tasks):
    """AWX's survey_spec validation (awx/api/views/__init__.py JobTemplateSurveySpec._validate_spec_data)."""
    (jt,) = [args for module, args, _ in rendered_tasks if module == "awx.awx.job_template"]
    for args in jt:
        a = awxlib.plain(args)
        if not a["survey_enabled"]:
            assert a["survey_spec"] == {}
            continue
        spec = a["survey_spec"]
        assert isinstance(spec["name"], str) and isinstance(spec["description"], str) and spec["spec"]
        variables = [q["variable"] for q in spec["spec"]]
        assert len(variables) == len(set(variables)), f"{a['name']}: duplicate survey variables"
        for q in spec["spec"]:
            assert set(q) <= {
                "variable",
                "question_name",
                "question_description",
                "type",
                "required",
                "default",
                "choices",
                "min",
                "max",
            }, q
            assert q["type"] in ("text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect")
            assert isinstance(q["required"], bool) and q["question_name"]
            if q["type"] == "multiplechoice":
                assert q["choices"] and q["default"] in q["choices"], q
            if q["type"] == "integer":
                assert isinstance(q["default"], int) and q.get("min", q["default"]) <= q["default"] <= q.get(
                    "max", q["default"]
                )
