#!/usr/bin/env bash
# Ansible integration tier: site.yml (the top-level one users run) on inventories/local (the sandbox), three times:
#   1. apply                        -> must succeed
#   2. apply again                  -> must succeed with changed=0 (idempotence)
#   3. --check --diff               -> must succeed with changed=0 (check mode agrees with the real run)
# Called by scripts/test.sh with the sandbox env sourced (.sandbox/env.sh). Extra arguments are passed to every
# ansible-playbook run (e.g. --skip-tags nodepools). Logs: build/test-results/site-{run1,run2,check}.log
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd); cd "$ROOT"
export ANSIBLE_CONFIG="${ANSIBLE_CONFIG:-$ROOT/ansible.cfg}" ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1
PLAYBOOK=${ANSIBLE_PLAYBOOK:-$ROOT/.venv/bin/ansible-playbook}
OUT="$ROOT/build/test-results"
# Logs are written to a private directory (scripts/test.sh wipes build/test-results at start, possibly from a
# concurrent run) and copied to $OUT when each run ends.
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/site-playbooks.XXXXXX")
trap 'rm -rf "$LOGDIR"' EXIT

fail(){ echo "FAIL: $*" >&2; exit 1; }

[[ -x $PLAYBOOK ]] || fail "ansible-playbook not found at $PLAYBOOK (run make bootstrap)"
[[ -n ${KUBECONFIG:-} ]] || fail "KUBECONFIG is not set: source .sandbox/env.sh first (sandbox/sandbox.py up)"
[[ -n ${AWS_ENDPOINT_URL:-} ]] || fail "AWS_ENDPOINT_URL is not set: the sandbox's moto is required (sandbox/sandbox.py up)"
case $AWS_ENDPOINT_URL in http://127.0.0.1:*|http://localhost:*) ;; *) fail "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL is not loopback; refusing to run against a real endpoint";; esac

# recap <log>: prints "ok changed failed unreachable" summed over every host of the last PLAY RECAP
recap(){
  awk '/^PLAY RECAP/{f=1; ok=ch=fa=un=0; n=0; next}
       f && /: ok=/{ n++; for(i=1;i<=NF;i++){ split($i,a,"="); if(a[1]=="ok")ok+=a[2]; if(a[1]=="changed")ch+=a[2];
                                             if(a[1]=="failed")fa+=a[2]; if(a[1]=="unreachable")un+=a[2]} }
       END{ if(!f||n==0){print "none"} else {print ok, ch, fa, un} }' "$1"
}

run(){ # name expect_changed_zero args...
  local name=$1 expect_zero=$2; shift 2
  local log="$LOGDIR/site-$name.log" t0=$SECONDS rc
  echo "=== site.yml $name: ansible-playbook site.yml -i inventories/local $*"
  "$PLAYBOOK" site.yml -i inventories/local "$@" >"$log" 2>&1
  rc=$?
  local r; r=$(recap "$log")
  mkdir -p "$OUT" && cp "$log" "$OUT/" 2>/dev/null
  echo "    rc=$rc recap(ok changed failed unreachable)=$r time=$((SECONDS - t0))s log=$OUT/site-$name.log"
  if [[ $rc -ne 0 || -z $r || $r == none ]]; then
    tail -n 40 "$log" >&2
    fail "site.yml $name failed (rc=$rc)"
  fi
  read -r _ok changed failed unreachable <<<"$r"
  [[ $changed =~ ^[0-9]+$ && $failed =~ ^[0-9]+$ && $unreachable =~ ^[0-9]+$ ]] || fail "site.yml $name: cannot parse PLAY RECAP ($r)"
  [[ $failed -eq 0 && $unreachable -eq 0 ]] || fail "site.yml $name: failed=$failed unreachable=$unreachable"
  if [[ $expect_zero == yes && $changed -ne 0 ]]; then
    echo "--- tasks reporting changed:" >&2
    grep -E '^(TASK \[|changed: )' "$log" | grep -B1 '^changed: ' >&2
    fail "site.yml $name reported changed=$changed; expected changed=0"
  fi
}

run run1 no "$@"
run run2 yes "$@"
run check yes --check --diff "$@"
echo "PASS: site.yml applied, idempotent (changed=0) and check mode reports no change"
