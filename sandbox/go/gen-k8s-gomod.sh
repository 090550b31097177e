#!/usr/bin/env bash
# Regenerate sandbox/go/k8s/go.mod for a Kubernetes version: requires k8s.io/kubernetes@KV and
# replaces every staging module (generated from upstream's go.mod, never hand-maintained) with its
# published v0.N.M tag. Usage: gen-k8s-gomod.sh v1.36.3
set -euo pipefail
KV=${1:?usage: $0 v1.N.M}
SV=v0.${KV#v1.}
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=-buildvcs=false
cd "$(dirname "$0")/k8s"
GOMOD=$(go mod download -json "k8s.io/kubernetes@$KV" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
GODEBUG_LINE=$(grep -E '^godebug' "$GOMOD" || true)
GO_LINE=$(grep -E '^go ' "$GOMOD")
printf 'module example.invalid/sandbox/k8s\n\n%s\n\n%s\n' "$GO_LINE" "$GODEBUG_LINE" > go.mod
rm -f go.sum
for m in $(sed -nE 's#^[[:space:]]*(k8s\.io/[A-Za-z0-9._-]+) => \./staging/.*#\1#p' "$GOMOD"); do
  go mod edit -replace "$m=$m@$SV"
done
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  go get -tool "k8s.io/kubernetes/cmd/$c@$KV"
done
go mod tidy
