#!/usr/bin/env bash
# Every quality gate and test tier. Usage: scripts/test.sh [all|lint|sanity|unit|integration]
# A tier that runs no test fails (pytest exit 5 is an error here), and the whole run fails if it
# executed no test at all. Timings per tier are printed at the end.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd); cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH" ANSIBLE_CONFIG="$ROOT/ansible.cfg" PYTHONDONTWRITEBYTECODE=1
export GOTOOLCHAIN=go1.27.3  # Karpenter's AWS provider v1.15 needs Go >= 1.26.11 (fetched from the module proxy)
export ANSIBLE_LOCAL_TEMP="${TMPDIR:-/tmp}/karpenter-eks-ansible-tmp"
WHAT=${1:-all}
OUT="$ROOT/build/test-results"; rm -rf "$OUT"; mkdir -p "$OUT"
declare -a SUMMARY=()
FAILED=0
TOTAL_TESTS=0

step(){ # name command...
  local name=$1; shift; local t0=$SECONDS
  echo "=== $name"
  if "$@"; then SUMMARY+=("PASS  $name ($((SECONDS-t0)) s)"); else SUMMARY+=("FAIL  $name ($((SECONDS-t0)) s)"); FAILED=1; fi
}

count_junit(){ python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
suites = [r] if r.tag == "testsuite" else r.findall("testsuite")
print(sum(int(s.get("tests", 0)) - int(s.get("skipped", 0)) for s in suites))
PY
}

pytest_tier(){ # tier path [extra pytest args]  -- exit 5 (nothing collected) is a failure
  local tier=$1 path=$2; shift 2
  python -m pytest "$path" -p no:cacheprovider --junitxml="$OUT/$tier.xml" "$@"
  local rc=$?
  if [[ $rc -eq 5 ]]; then echo "ERROR: tier '$tier' collected no tests ($path) - refusing to pass silently"; return 1; fi
  [[ -f "$OUT/$tier.xml" ]] && TOTAL_TESTS=$((TOTAL_TESTS + $(count_junit "$OUT/$tier.xml")))
  return $rc
}

lint(){
  step "ruff check" ruff check .
  step "ruff format --check" ruff format --check .
  # awx/apply.yml uses awx.awx, which the ansible 14 bundle no longer carries: take it out of the
  # ansible 12.3.0 wheel from PyPI into a cache (tests/unit/awx/awxlib.py) for the linter only
  local awxpath; awxpath=$(python tests/unit/awx/awxlib.py collections-path) || { echo "cannot get awx.awx"; FAILED=1; }
  step "ansible-lint (production profile)" env ANSIBLE_COLLECTIONS_PATH="$awxpath:$ROOT/.collections" ansible-lint --profile production
}

sanity(){
  # ansible-test bootstraps pip in its venvs with a script it downloads from a host that is not
  # reachable here; it documents pre-seeding its cache, which is what this does (see the script).
  local pipver; pipver=$(python -c 'import sys, types; from ansible_test._internal.python_requirements import get_venv_packages as g; print(g(types.SimpleNamespace(version="%d.%d" % sys.version_info[:2]))["pip"])')
  mkdir -p ~/.ansible/test/cache && cp scripts/get_pip_offline.py ~/.ansible/test/cache/get_pip_${pipver//./_}.py
  local dst="${TMPDIR:-/tmp}/karpenter-eks-sanity/ansible_collections/karpenter_eks/platform"
  rm -rf "$dst"; mkdir -p "$dst"
  # what ships (galaxy.yml build_ignore) plus tests/unit; the sandbox, benchmarks and pytest
  # integration tests (and the unit tests of the sandbox's own scripts) are tooling beside the collection,
  # checked by ruff instead
  git ls-files -co --exclude-standard -z \
    | grep -zvE '^(sandbox|bench|hack|scripts|awx|molecule|tests/integration|tests/unit/awx|tests/unit/sandbox|\.ci)/|^(Makefile|execution-environment\.yml|site\.yml)$' \
    | xargs -0 -I{} cp --parents {} "$dst"/ 2>/dev/null
  # dependencies beside it, as ansible-galaxy would install them (from the PyPI ansible bundle)
  local site; site=$(python -c 'import ansible_collections.kubernetes.core as m, os; print(os.path.dirname(os.path.dirname(os.path.dirname(list(m.__path__)[0]))))')
  for c in kubernetes/core amazon/aws community/aws; do
    mkdir -p "$(dirname "$dst")/../${c%/*}"; ln -sfn "$site/ansible_collections/$c" "$(dirname "$dst")/../$c"
  done
  ( cd "$dst" && ansible-test sanity --python "$(python -c 'import sys;print(f"{sys.version_info[0]}.{sys.version_info[1]}")')" \
      --requirements --local --color no -v )
}

build_tools(){ # sandbox binaries (also promtool for the unit tier); a no-op when the cache is warm
  local out; out=$(sandbox/build.sh | tail -1) || return 1
  export SANDBOX_BIN="$out/bin" KARPENTER_EKS_STRICT_TOOLS=1
}

browser(){ # Debian's chromium for tests/unit/cost/test_report_browser.py; idempotent, quiet
  if ! command -v chromium >/dev/null 2>&1; then
    local sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo -n"
    if ! { $sudo apt-get install -y -q chromium >/tmp/karpenter-eks-chromium-install.log 2>&1 \
           || { $sudo apt-get update -q >>/tmp/karpenter-eks-chromium-install.log 2>&1 \
                && $sudo apt-get install -y -q chromium >>/tmp/karpenter-eks-chromium-install.log 2>&1; }; }; then
      echo "ERROR: cannot install chromium with apt-get (needed to render the HTML reports in a browser);"
      echo "       install Debian's 'chromium' package as root. Last lines of the apt log:"
      tail -5 /tmp/karpenter-eks-chromium-install.log; return 1
    fi
  fi
  chromium --version 2>/dev/null || { echo "ERROR: chromium is installed but does not start"; return 1; }
  export REQUIRE_BROWSER=1  # from here on a missing browser fails the report tests instead of skipping them
}

unit(){
  step "chromium for the report browser tests (apt-get, once)" browser
  step "unit tests (pytest tests/unit)" pytest_tier unit tests/unit -q
}

integration(){
  local was_up=0
  python sandbox/sandbox.py status >/dev/null 2>&1 && was_up=1
  step "sandbox up (builds on first use)" python sandbox/sandbox.py up
  # shellcheck disable=SC1091
  source .sandbox/env.sh
  step "integration tests (pytest tests/integration)" pytest_tier integration tests/integration -q
  step "ansible integration (site.yml + idempotence on inventories/local)" tests/integration/run-playbooks.sh
  local scenario
  for scenario in cluster security karpenter monitoring; do  # per role: prepare, converge, idempotence, verify
    step "molecule $scenario (delegated, sandbox)" molecule test -s "$scenario"
  done
  if [[ $was_up -eq 0 && -z ${SANDBOX_KEEP:-} ]]; then python sandbox/sandbox.py down; fi
}

case $WHAT in
  lint) lint ;;
  sanity) step "ansible-test sanity" sanity ;;
  unit) step "sandbox build (cached by version)" build_tools; unit ;;
  integration) integration ;;
  all) step "sandbox build (cached by version)" build_tools; lint; step "ansible-test sanity" sanity; unit; integration ;;
  *) echo "usage: $0 [all|lint|sanity|unit|integration]"; exit 2 ;;
esac

echo; echo "=== summary ($WHAT)"; printf '%s\n' "${SUMMARY[@]}"
echo "pytest tests executed: $TOTAL_TESTS"
if [[ $WHAT != lint && $WHAT != sanity && $TOTAL_TESTS -eq 0 ]]; then
  echo "ERROR: no test was executed at all"; exit 1
fi
exit $FAILED
