"""sandbox/build.sh on a new machine: module sources resolve from an EMPTY Go module cache, failures are named.

`go list -m -json MODULE` prints no ``Dir`` for a module that is not extracted in the module cache yet (every earlier
run had a warm cache, so the cold build's ``KeyError: 'Dir'`` went unseen). build.sh resolves sources with
``go mod download -json``, which downloads first. These tests point GOMODCACHE, GOCACHE and the sandbox cache at
empty temporary directories, as on a new machine; they download from the Go module proxy (the toolchain that
GOTOOLCHAIN names, and the module), bounded in time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BUILD = REPO / "sandbox" / "build.sh"

pytestmark = pytest.mark.skipif(
    not shutil.which("go") and not os.environ.get("KARPENTER_EKS_STRICT_TOOLS"), reason="no Go toolchain"
)


def run_build(tmp_path: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        GOMODCACHE=str(tmp_path / "gomodcache"),
        GOCACHE=str(tmp_path / "gocache"),
        SANDBOX_CACHE=str(tmp_path / "sandbox-cache"),
        GOFLAGS="",
    )
    env.pop("GOTOOLCHAIN", None)  # build.sh sets the toolchain it needs itself
    return subprocess.run(
        ["bash", str(BUILD), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=tmp_path
    )


def test_the_karpenter_core_source_resolves_from_an_empty_module_cache(tmp_path):
    res = run_build(tmp_path, "--resolve", "karpenter-aws", "karpenter-aws", "sigs.k8s.io/karpenter")
    assert res.returncode == 0, res.stderr[-3000:]
    src = Path(res.stdout.strip().splitlines()[-1])
    # downloaded into the empty cache (not found in the machine's warm one), at the version go.mod pins
    assert src.is_relative_to(tmp_path / "gomodcache") and src.name == "karpenter@v1.15.0"
    # ... and it is the source the loopback patch applies to: the two ":%d" bind addresses are there
    operator = (src / "pkg" / "operator" / "operator.go").read_text()
    assert operator.count('fmt.Sprintf(":%d", options.FromContext(ctx).') == 2


def test_a_module_that_cannot_be_resolved_names_the_component_command_and_error(tmp_path):
    res = run_build(tmp_path, "--resolve", "karpenter-aws", "karpenter-aws", "sigs.k8s.io/karpenter@v0.0.0-nope")
    assert res.returncode == 4
    err = res.stderr
    assert "FAILED [karpenter-aws]" in err
    assert "go mod download -json sigs.k8s.io/karpenter@v0.0.0-nope" in err
    assert "  | " in err and "v0.0.0-nope" in err.split("FAILED", 1)[1].split("\n", 1)[1]  # go's own message
    assert "Traceback" not in err and "KeyError" not in err
