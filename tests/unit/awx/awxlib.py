"""Helpers shared by the AWX tests (tests/unit/awx, tests/integration/test_awx.py).

* ``awx_collection_path()``: a collections path holding awx.awx 24.6.1, taken out of the ``ansible`` 12.3.0 wheel
  (PyPI; the ``ansible`` 14 bundle has no awx.awx and Galaxy is not reachable) into a cache outside the repository.
  ``python tests/unit/awx/awxlib.py collections-path`` prints it (used for ansible-lint, see awx/README.md).
* ``module_argument_spec(name)``: the real argument spec of an awx.awx module (its ``main()`` is run up to the point
  where it builds ``ControllerAPIModule``, which is replaced by a stub that records its arguments), including the
  shared controller auth options.
* ``load_config()`` / ``render()``: awx/configs as Ansible loads them, templated with ansible-core's own Templar.
* ``job_templates()``: the job templates awx/apply.yml creates (one per entry and environment).
* ``inject_credential()``: what AWX does with a credential type's injectors at job start
  (awx/main/models/credential/__init__.py ``CredentialType.inject_credential``): file injectors become files in
  ``<private_data_dir>/env``, env injectors are rendered with a sandboxed Jinja2 environment, every env key is set.
"""

import os
import re
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
AWX_DIR = os.path.join(ROOT, "awx")
APPLY = os.path.join(AWX_DIR, "apply.yml")
AWX_SOURCE_WHEEL = "ansible==12.3.0"  # last bundles with awx.awx (24.6.1): 11.x-13.x
CACHE = os.environ.get("KARPENTER_EKS_AWX_CACHE", os.path.expanduser("~/.cache/karpenter-eks-awx"))


def awx_collection_path():
    """A directory D with D/ansible_collections/awx/awx (extracted once from the ansible wheel)."""
    if os.environ.get("AWX_COLLECTIONS_PATH"):
        return os.environ["AWX_COLLECTIONS_PATH"]
    dest = os.path.join(CACHE, "collections")
    if os.path.isfile(os.path.join(dest, "ansible_collections", "awx", "awx", "MANIFEST.json")):
        return dest
    os.makedirs(CACHE, exist_ok=True)
    wheels = [f for f in os.listdir(CACHE) if f.startswith("ansible-12.3.0-") and f.endswith(".whl")]
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", AWX_SOURCE_WHEEL, "-d", CACHE],
            check=True,
            capture_output=True,
        )
        wheels = [f for f in os.listdir(CACHE) if f.startswith("ansible-12.3.0-") and f.endswith(".whl")]
    tmp = tempfile.mkdtemp(dir=CACHE)
    with zipfile.ZipFile(os.path.join(CACHE, wheels[0])) as z:
        for member in z.namelist():
            if member.startswith("ansible_collections/awx/awx/"):
                z.extract(member, tmp)
    if os.path.isdir(dest):
        os.rename(dest, dest + f".old{os.getpid()}")
    os.rename(tmp, dest)  # atomic: a concurrent reader sees all of it or nothing
    return dest


def _awx_root():
    return os.path.join(awx_collection_path(), "ansible_collections", "awx", "awx")


class _Captured(Exception):
    def __init__(self, kwargs):
        super().__init__("captured")
        self.kwargs = kwargs


class _CaptureModule:
    def __init__(self, argument_spec=None, **kwargs):
        raise _Captured(dict(kwargs, argument_spec=argument_spec))


_SPECS = {}
_PKG = "karpenter_eks_awx_capture"


def _load(modname, path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    spec.loader.exec_module(mod)
    return mod


def auth_argument_spec():
    if "__auth__" not in _SPECS:
        path = os.path.join(_awx_root(), "plugins", "module_utils", "controller_api.py")
        _SPECS["__auth__"] = dict(_load(_PKG + "_controller_api", path).ControllerModule.AUTH_ARGSPEC)
    return _SPECS["__auth__"]


def _capture_package():
    """<_PKG>.plugins.module_utils.controller_api whose ControllerAPIModule captures its arguments."""
    import types

    if _PKG in sys.modules:
        return
    for name in (_PKG, _PKG + ".plugins", _PKG + ".plugins.module_utils", _PKG + ".plugins.modules"):
        pkg = types.ModuleType(name)
        pkg.__path__ = []
        sys.modules[name] = pkg
    api = types.ModuleType(_PKG + ".plugins.module_utils.controller_api")
    api.ControllerAPIModule = _CaptureModule
    sys.modules[api.__name__] = api


def module_argument_spec(name):
    """(argument_spec incl. auth options, other AnsibleModule kwargs) of awx.awx.<name>."""
    if name not in _SPECS:
        _capture_package()
        path = os.path.join(_awx_root(), "plugins", "modules", name + ".py")
        mod = _load(f"{_PKG}.plugins.modules.{name}", path)  # its `from ..module_utils.controller_api` is the capture
        try:
            mod.main()
        except _Captured as c:
            kwargs = c.kwargs
        else:  # pragma: no cover
            raise AssertionError(f"awx.awx.{name}: main() did not build ControllerAPIModule")
        spec = dict(auth_argument_spec())
        spec.update(kwargs.pop("argument_spec") or {})
        _SPECS[name] = (spec, kwargs)
    return _SPECS[name]


# ---------------------------------------------------------------- configuration as Ansible sees it
def _loader():
    from ansible.parsing.dataloader import DataLoader

    return DataLoader()


def load_yaml(path):
    """YAML as ansible-playbook loads it (trusted templates, !unsafe honoured)."""
    return _loader().load_from_file(path, trusted_as_template=True)


def apply_play():
    (play,) = load_yaml(APPLY)
    return play


def load_config(extra=None):
    """Play variables of awx/apply.yml: vars_files, then play vars, then ``extra`` (like -e)."""
    play = apply_play()
    variables = {}
    for f in play.get("vars_files", []):
        variables.update(load_yaml(os.path.join(AWX_DIR, f)))
    variables.update(play.get("vars") or {})
    variables.update(extra or {})
    return variables


def trusted(text):
    """A string built here (not loaded from a file) that the Templar may template."""
    from ansible.template import trust_as_template

    return trust_as_template(text)


def render(data, variables):
    """Template ``data`` with ansible-core's Templar (omitted values are dropped like in a task)."""
    from ansible.template import Templar

    return Templar(loader=_loader(), variables=variables).template(data)


def plain(data):
    """Tagged Ansible containers/strings -> plain Python (for JSON/YAML dumps and comparisons)."""
    if isinstance(data, dict):
        return {str(k): plain(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [plain(v) for v in data]
    if isinstance(data, bool) or data is None:
        return data
    if isinstance(data, int):
        return int(data)
    if isinstance(data, float):
        return float(data)
    return str(data)


def job_templates(config=None):
    """Job templates awx/apply.yml creates: dicts with name, environment, playbook, survey, ... (plain Python)."""
    config = config or load_config()
    prefix = str(config["karpenter_eks_awx_prefix"])
    out = []
    for entry in plain(config["karpenter_eks_awx_job_templates"]):
        for env in entry["environments"]:
            t = dict(entry, environment=env, key=entry["name"])
            t["name"] = f"{prefix} {env}: {entry['name']}"
            t["inventory"] = f"{prefix} {env}"
            t["credentials"] = [f"{prefix} {env} kubernetes", f"{prefix} {env} aws"]
            out.append(t)
    return out


def survey_extra_vars(survey, answers=None):
    """Extra vars AWX sends for a survey: the answers, else each question's default (empty optional text omitted)."""
    answers = answers or {}
    out = {}
    for q in survey:
        var = q["variable"]
        if var in answers:
            out[var] = answers[var]
        elif q.get("default") not in (None, ""):
            out[var] = q["default"]
        elif q.get("required"):
            raise KeyError(f"survey question {var!r} is required and has no default: an answer is needed")
    return out


def credential_type(config, key):
    for ct in plain(config["karpenter_eks_awx_credential_types"]):
        if ct["key"] == key:
            return ct
    raise KeyError(key)


# ---------------------------------------------------------------- AWX credential injection
def inject_credential(ctype, inputs, private_data_dir):
    """Env vars AWX sets for a credential of type ``ctype`` with ``inputs`` (mirrors CredentialType.inject_credential)."""
    from jinja2 import sandbox

    missing = [f for f in ctype["inputs"].get("required", []) if inputs.get(f) in (None, "")]
    if missing:
        raise ValueError(f"{ctype['name']}: required inputs missing: {missing}")

    class TowerNamespace:
        pass

    tower = TowerNamespace()
    namespace = {"tower": tower}
    for k, v in inputs.items():
        if isinstance(v, bool) or len(v):
            namespace[k] = v
    for field in ctype["inputs"].get("fields", []):
        if field.get("type") == "boolean" and field["id"] not in inputs:
            namespace[field["id"]] = False

    env_dir = os.path.join(private_data_dir, "env")
    os.makedirs(env_dir, exist_ok=True)
    jenv = sandbox.ImmutableSandboxedEnvironment()
    for label, tmpl in ctype["injectors"].get("file", {}).items():
        fd, path = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(fd, "w") as f:
            f.write(jenv.from_string(tmpl).render(**namespace))
        os.chmod(path, 0o660)
        if "." not in label:
            tower.filename = path
        else:
            if not hasattr(tower, "filename"):
                tower.filename = TowerNamespace()
            setattr(tower.filename, label.split(".", 1)[1], path)
    env = {}
    for var, tmpl in ctype["injectors"].get("env", {}).items():
        if re.match(r"^(ANSIBLE_|PATH$|PYTHONPATH$|JOB_ID$|INVENTORY_ID$|VIRTUAL_ENV$)", var):
            raise ValueError(f"AWX refuses to inject {var}")
        env[var] = jenv.from_string(tmpl).render(**namespace)
    extra_vars = {
        k: jenv.from_string(t).render(**namespace) for k, t in ctype["injectors"].get("extra_vars", {}).items()
    }
    return env, extra_vars


if __name__ == "__main__":
    if sys.argv[1:] == ["collections-path"]:
        print(awx_collection_path())
    else:
        sys.exit("usage: awxlib.py collections-path")
