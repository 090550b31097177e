#!/usr/bin/env bash
# Create/refresh the project venv (.venv) and the .collections link. Idempotent and fast when
# nothing changed: the venv is rebuilt only when requirements*.txt or the interpreter change.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd); cd "$ROOT"
pick_python(){
  local c
  for c in "${PYTHON:-}" python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3 python3.13 \
           "$HOME"/.pyenv/versions/3.13*/bin/python3 python3.11 python3; do
    [[ -n "$c" ]] || continue
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  echo "bootstrap: need Python >= 3.11 (3.12+ preferred); set PYTHON=/path/to/python3.12" >&2; return 1
}
PY=$(pick_python)
PYSTAMP=$("$PY" -c 'import sys; print(sys.version)' | sha256sum | cut -c1-16)
REQSTAMP=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
if [[ ! -x .venv/bin/python || "$(cat .venv/.python-stamp 2>/dev/null)" != "$PYSTAMP" ]]; then
  echo "bootstrap: creating .venv with $PY ($("$PY" -V))" >&2
  rm -rf .venv
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  echo "$PYSTAMP" > .venv/.python-stamp
fi
if [[ "$(cat .venv/.requirements-stamp 2>/dev/null)" != "$REQSTAMP" ]]; then
  echo "bootstrap: installing requirements-dev.txt into .venv" >&2
  .venv/bin/python -m pip install -q -r requirements-dev.txt
  .venv/bin/python -m pip check >&2
  echo "$REQSTAMP" > .venv/.requirements-stamp
fi
mkdir -p .collections/ansible_collections/karpenter_eks
ln -sfn ../../.. .collections/ansible_collections/karpenter_eks/platform
