#!/usr/bin/env python3
"""One fresh process of bench/validation_bench.py: what a run pays from spawn to exit, import included.

    .venv/bin/python bench/validation_child.py offline OBJECTS.json
    .venv/bin/python bench/validation_child.py server OBJECTS.json KUBECONFIG CONCURRENCY

Both modes import the collection's code as a module run of ``karpenter_provisioner`` / ``node_template`` does
(``glue.karpenter_main``, which loads ``ansible.module_utils.basic``, then ``load_karpenter_apply()``: the converter,
the validator, the apply engine), then read the objects (a JSON list):

* ``offline``: ``validate_batch(objs, known_nodeclasses=<the EC2NodeClasses of the file>)``, the module's
  validation call (schema + defaults + CEL + Karpenter's runtime rules + lint);
* ``server``: connect with the module's client (``kube.client.connect``) and server-side dry-run every object
  with the module's function (``engine.dry_run``: apply with ``dryRun=All&fieldValidation=Strict``, up to
  CONCURRENCY in flight), one kind after the other as the two modules would.

Prints one JSON object: ``import_seconds`` (from the first line of this script, so without the interpreter's
own start-up), ``inner_seconds`` (the validation or the dry-runs alone) and the verdicts. bench/validation_bench.py
times the whole process from the outside. Imported by the bench for the same helpers in its own process.
"""

import time

T0 = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".collections")
API_SOURCES = ("schema", "cel")  # what the apiserver checks; "runtime" is Karpenter's controller, "lint" ours


def module_imports():
    """The collection's apply path, imported the way the two Karpenter modules import it."""
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)
    from ansible_collections.karpenter_eks.platform.plugins.module_utils.glue import karpenter_main

    karpenter_apply, error = karpenter_main.load_karpenter_apply()
    if karpenter_apply is None:
        raise SystemExit(error)
    return karpenter_apply


def offline_verdicts(batch):
    """Per object (input order): the errors the apiserver would also report, and Karpenter's runtime ones."""
    out = []
    for res in batch.results:
        api = [str(i) for i in res.errors if i.source in API_SOURCES]
        out.append(
            {
                "object": res.object_ref,
                "ok": res.ok,
                "ok_for_apiserver": not api,
                "errors": api,
                "runtime_errors": [str(i) for i in res.errors if i.source == "runtime"],
                "paths": [i.path for i in res.errors if i.source in API_SOURCES],
            }
        )
    return out


TYPED_PATCH_500 = "failed to create typed patch object"


class TypedPatchVerdicts:
    """The module's client for ``engine.dry_run``, except for one answer: a server-side apply body with a field
    of the wrong type (``nodes: 0`` for a string) is refused with HTTP 500 "failed to create typed patch
    object" before any validation, and ``engine.dry_run`` takes every 5xx for an unavailable API and stops the
    batch. A module run never sends such an object (offline validation refuses it first); here it is counted as
    the refusal it is (``typed_patch_500``) so that every object gets a verdict."""

    def __init__(self, api):
        self.api = api
        self.typed_patch_500 = []

    def apply(self, path, obj, field_manager, force=True, dry_run=False):
        from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube.client import KubeError

        try:
            return self.api.apply(path, obj, field_manager, force=force, dry_run=dry_run)
        except KubeError as exc:
            if exc.status != 500 or TYPED_PATCH_500 not in str(exc):
                raise
            self.typed_patch_500.append(path)
            raise KubeError(str(exc), status=400, body=exc.body) from exc


def dry_run_kinds(api, objs, concurrency):
    """``engine.dry_run`` of the objects, EC2NodeClasses first, then NodePools (nothing stored); returns
    {"Kind/name": message} of the objects the apiserver refused."""
    from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import engine, resource

    api = TypedPatchVerdicts(api)
    rejected = {}
    for kind in (resource.EC2NODECLASS, resource.NODEPOOL):
        desired = [engine.add_managed_by(o) for o in objs if o.get("kind") == kind.kind]
        if desired:
            plan = engine.plan_kind(kind, desired, {})
            for problem in engine.dry_run(api, plan, concurrency=concurrency):
                rejected[problem["object"]] = problem["message"]
    return rejected


def main(argv):
    mode, path = argv[0], argv[1]
    karpenter_apply = module_imports()
    imported = time.perf_counter()
    with open(path) as f:
        objs = json.load(f)
    out = {"objects": len(objs), "import_seconds": round(imported - T0, 4)}
    if mode == "offline":
        known = [o["metadata"]["name"] for o in objs if o["kind"] == "EC2NodeClass"]
        t0 = time.perf_counter()
        batch = karpenter_apply.validate_mod.validate_batch(objs, known_nodeclasses=known)
        out["inner_seconds"] = round(time.perf_counter() - t0, 4)
        out["verdicts"] = offline_verdicts(batch)
    elif mode == "server":
        from ansible_collections.karpenter_eks.platform.plugins.module_utils.kube import client

        t0 = time.perf_counter()
        api = client.connect({"kubeconfig": argv[2]})
        rejected = dry_run_kinds(api, objs, int(argv[3]))
        out["inner_seconds"] = round(time.perf_counter() - t0, 4)  # the first request opens the connection
        out["rejected"] = rejected
    else:
        raise SystemExit("unknown mode %r (offline or server)" % mode)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
