#!/usr/bin/env bash
# Build the sandbox binaries from published Go modules into a cache outside the repository and
# fetch the chart/CRD data they need. Binaries are keyed by a hash of the Go version, every
# go/*/go.mod + go.sum and RECIPE (bump it when the build flags below change); data is keyed by
# versions.env. Nothing is rebuilt unless one of those changes. Prints the cache dir (last line).
#
#   sandbox/build.sh         build/fetch what is missing, print "<cache>/<key>"
#   sandbox/build.sh --key   print the cache key only
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RECIPE=2
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
if ! command -v go >/dev/null 2>&1; then
  echo "sandbox/build.sh: the Go toolchain (go >= 1.26.6) is not on PATH; install Go and retry" >&2
  exit 3
fi
# shellcheck source=versions.env
source "$HERE/versions.env"
K8S_VERSION=$(sed -nE 's#^[[:space:]]*k8s.io/kubernetes (v[0-9.]+).*#\1#p' "$HERE/go/k8s/go.mod" | head -1)
KEY=$( { go version; echo "recipe=$RECIPE"; for f in "$HERE"/go/*/go.mod "$HERE"/go/*/go.sum; do echo "${f#"$HERE"/}"; cat "$f"; done; } | sha256sum | cut -c1-16)
DKEY=$(sha256sum "$HERE/versions.env" | cut -c1-12)
if [[ ${1:-} == --key ]]; then echo "$KEY-$DKEY"; exit 0; fi
CACHE=${SANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/karpenter-eks-sandbox}
OUT="$CACHE/$KEY"; BIN="$OUT/bin"; DATA="$CACHE/data-$DKEY"
mkdir -p "$BIN" "$OUT/logs"
log(){ echo "[build $(date +%H:%M:%S)] $*" >&2; }

build(){ # name dir outfile pkg [ldflags] [extra go build flags...]
  local name=$1 dir=$2 out=$3 pkg=$4 ld=${5:-}; shift 5 2>/dev/null || shift $#
  local extra=("$@")
  if [[ -x "$BIN/$out" ]]; then return 0; fi
  log "building $name ($pkg)"; local t0=$SECONDS
  ( cd "$HERE/go/$dir" && /usr/bin/time -f "%e s, max RSS %M KB" -o "$OUT/logs/$out.time" \
      go build -p 2 ${extra[@]+"${extra[@]}"} -ldflags "-s -w $ld" -o "$BIN/$out.tmp" "$pkg" ) >"$OUT/logs/$out.log" 2>&1 || {
    log "FAILED building $name; see $OUT/logs/$out.log"; tail -20 "$OUT/logs/$out.log" >&2; exit 4; }
  mv "$BIN/$out.tmp" "$BIN/$out"; log "built $name in $((SECONDS-t0)) s ($(cat "$OUT/logs/$out.time"))"
}

build etcd     etcd      etcd     go.etcd.io/etcd/server/v3
build etcdctl  etcd      etcdctl  go.etcd.io/etcd/etcdctl/v3
build kwok     kwok      kwok     sigs.k8s.io/kwok/cmd/kwok
# Karpenter's operator binds its metrics and health servers to ":<port>" - every interface - in
# pkg/operator/operator.go. The sandbox keeps everything on 127.0.0.1, so karpenter-kwok is built in a
# Go workspace (outside the repository) that uses a copy of the pinned sigs.k8s.io/karpenter module
# with both bind addresses set to 127.0.0.1 (go -overlay refuses files in the module cache). Nothing
# of upstream is committed: the sed below is the whole patch, and the build fails unless it matches
# exactly two lines.
if [[ ! -x "$BIN/karpenter-kwok-loopback" ]]; then
  KARP_SRC=$(cd "$HERE/go/karpenter" && go list -m -json sigs.k8s.io/karpenter | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')
  WS="$OUT/karpenter-ws"; rm -rf "$WS"; mkdir -p "$WS"
  cp -r "$KARP_SRC" "$WS/karpenter"; chmod -R u+w "$WS/karpenter"
  sed -E -i 's/fmt\.Sprintf\(":%d", options\.FromContext\(ctx\)\.(MetricsPort|HealthProbePort)\)/fmt.Sprintf("127.0.0.1:%d", options.FromContext(ctx).\1)/' \
    "$WS/karpenter/pkg/operator/operator.go"
  if [[ $(grep -c '"127.0.0.1:%d"' "$WS/karpenter/pkg/operator/operator.go") -ne 2 ]]; then
    log "FAILED: pkg/operator/operator.go of sigs.k8s.io/karpenter changed; update the loopback patch in build.sh"; exit 4
  fi
  (cd "$WS" && go work init "$HERE/go/karpenter" ./karpenter)
fi
GOWORK="$OUT/karpenter-ws/go.work" build karpenter-kwok karpenter karpenter-kwok-loopback sigs.k8s.io/karpenter/kwok
build helm     helm      helm     helm.sh/helm/v3/cmd/helm
MINOR=$(echo "$K8S_VERSION" | cut -d. -f2); NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
KLD=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  KLD+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean -X $p.buildDate=$NOW"
done
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  build "$c" k8s "$c" "k8s.io/kubernetes/cmd/$c" "$KLD"
done

# Data from the Go module cache: AWS Karpenter chart + CRDs, Karpenter KWOK CRDs, kwok stages,
# Prometheus-operator and Kyverno CRDs (objects only; no controllers of theirs run in the sandbox).
if [[ ! -d "$DATA" ]]; then
  log "fetching chart/CRD data from the Go module proxy"
  mod_dir(){ go mod download -json "$1" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])'; }
  dep_dir(){ (cd "$HERE/go/$1" && go list -m -json "$2" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])'); }
  AWS=$(mod_dir "github.com/aws/karpenter-provider-aws@$AWS_KARPENTER_VERSION")
  PROM=$(mod_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
  KYV=$(mod_dir "github.com/kyverno/kyverno@$KYVERNO_VERSION")
  KARP=$(dep_dir karpenter sigs.k8s.io/karpenter); KWOKD=$(dep_dir kwok sigs.k8s.io/kwok)
  T="$DATA.tmp"; rm -rf "$T"; mkdir -p "$T/crds/karpenter" "$T/crds/aws" "$T/crds/extra"
  cp -r "$AWS/charts/karpenter" "$T/aws-chart"
  cp "$KARP"/kwok/charts/crds/*.yaml "$KARP"/kwok/apis/crds/*.yaml "$T/crds/karpenter/"
  cp "$AWS/pkg/apis/crds/karpenter.k8s.aws_ec2nodeclasses.yaml" "$T/crds/aws/"
  cp "$PROM/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" \
     "$PROM/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
     "$PROM/example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml" "$T/crds/extra/"
  cp "$KYV/config/crds/kyverno/kyverno.io_clusterpolicies.yaml" "$T/crds/extra/"
  cp -r "$KWOKD/kustomize/stage" "$T/kwok-stages"
  chmod -R u+w "$T"; mv "$T" "$DATA"
fi
ln -sfn "$DATA" "$OUT/data"

# Prometheus + promtool (optional component; Debian's package, unpacked into the cache without
# installing it system-wide, so no service starts and no root-owned files change).
PROM_DIR="$CACHE/prometheus-$PROMETHEUS_DEB_VERSION"
if [[ ! -x "$PROM_DIR/usr/bin/promtool" ]] && command -v apt-get >/dev/null 2>&1; then
  log "fetching Debian's prometheus $PROMETHEUS_DEB_VERSION (promtool for rule tests)"
  T=$(mktemp -d); ( cd "$T" && apt-get download "prometheus=$PROMETHEUS_DEB_VERSION" >/dev/null 2>&1 ) \
    && dpkg-deb -x "$T"/prometheus_*.deb "$PROM_DIR.tmp" && rm -rf "$PROM_DIR" && mv "$PROM_DIR.tmp" "$PROM_DIR" \
    || log "WARNING: could not fetch prometheus (Debian package); promtool/prometheus will be unavailable"
  rm -rf "$T"
fi
for b in prometheus promtool; do
  [[ -x "$PROM_DIR/usr/bin/$b" ]] && ln -sfn "$PROM_DIR/usr/bin/$b" "$BIN/$b"
done
echo "$OUT"
