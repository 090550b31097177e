#!/usr/bin/env bash
# Build the sandbox binaries from published Go modules into a cache outside the repository and
# fetch the chart/CRD data they need. Binaries are keyed by a hash of the Go version, every
# go/*/go.mod + go.sum and RECIPE (bump it when the build flags below change); data is keyed by
# versions.env and the Karpenter provider's go.mod. Nothing is rebuilt unless one of those changes.
# Prints the cache dir (last line).
#
#   sandbox/build.sh              build/fetch what is missing, print "<cache>/<key>"
#   sandbox/build.sh --key        print the cache key only
#   sandbox/build.sh --lts        also build the Karpenter LTS controller (go/karpenter-aws-lts)
#   sandbox/build.sh --sources    only resolve (download) every module source; no build
#   sandbox/build.sh --resolve COMPONENT GOMOD-DIR MODULE[@VERSION]
#                                 print the source directory of one module (downloaded first if needed)
#
# Every failure names the component, the command and the end of its stderr.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RECIPE=3
# karpenter-provider-aws v1.15 needs Go >= 1.26.11; the go command fetches this toolchain from the
# module proxy on first use (~76 MB). Every entry point (Makefile, scripts, .ci/run) exports it too.
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
[[ $GOTOOLCHAIN == local ]] && export GOTOOLCHAIN=go1.27.3
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
fail(){ # component command-description stderr-file|text
  local comp=$1 cmd=$2 err=${3:-}
  echo "sandbox/build.sh: FAILED [$comp]: $cmd" >&2
  if [[ -f $err ]]; then tail -25 "$err" | sed 's/^/  | /' >&2; elif [[ -n $err ]]; then echo "$err" | sed 's/^/  | /' >&2; fi
  exit 4
}
if ! command -v go >/dev/null 2>&1; then
  echo "sandbox/build.sh: the Go toolchain (go >= 1.21, which can fetch $GOTOOLCHAIN) is not on PATH; install Go and retry" >&2
  exit 3
fi
GOVERSION=$(go version 2>/tmp/.sandbox-go-version.$$) || fail toolchain "go version (GOTOOLCHAIN=$GOTOOLCHAIN)" /tmp/.sandbox-go-version.$$
rm -f /tmp/.sandbox-go-version.$$
# shellcheck source=versions.env
source "$HERE/versions.env"
K8S_VERSION=$(sed -nE 's#^[[:space:]]*k8s.io/kubernetes (v[0-9.]+).*#\1#p' "$HERE/go/k8s/go.mod" | head -1)
gomod_version(){ sed -nE "s#^[[:space:]]*(require[[:space:]]+)?$2 (v[^ ]+).*#\2#p" "$HERE/go/$1/go.mod" | head -1; }
KARPENTER_AWS_VERSION=$(gomod_version karpenter-aws github.com/aws/karpenter-provider-aws)
KARPENTER_CORE_VERSION=$(gomod_version karpenter-aws sigs.k8s.io/karpenter)
KEY=$( { echo "$GOVERSION"; echo "recipe=$RECIPE"; for f in "$HERE"/go/*/go.mod "$HERE"/go/*/go.sum; do
  [[ $f == */karpenter-aws-lts/* ]] && continue; echo "${f#"$HERE"/}"; cat "$f"; done; } | sha256sum | cut -c1-16)
DKEY=$( { cat "$HERE/versions.env"; echo "aws=$KARPENTER_AWS_VERSION"; } | sha256sum | cut -c1-12)
MODE=${1:-}
if [[ $MODE == --key ]]; then echo "$KEY-$DKEY"; exit 0; fi
CACHE=${SANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/karpenter-eks-sandbox}
OUT="$CACHE/$KEY"; BIN="$OUT/bin"; DATA="$CACHE/data-$DKEY"
mkdir -p "$BIN" "$OUT/logs"
log(){ echo "[build $(date +%H:%M:%S)] $*" >&2; }

# mod_dir COMPONENT GOMOD-DIR MODULE[@VERSION]: download the module (if it is not in the module cache
# yet) and print its source directory. `go list -m` prints no Dir for a module that is not extracted
# yet; `go mod download -json` downloads first and always reports Dir or Error.
mod_dir(){
  local comp=$1 dir=$2 mod=$3 err json
  err=$(mktemp)
  local wd="$HERE/go/$dir"; [[ $dir == - ]] && wd=$OUT  # "-": outside any module (an explicit version)
  json=$(cd "$wd" && go mod download -json "$mod" 2>"$err") || {
    [[ -n $json ]] && echo "$json" >>"$err"; fail "$comp" "(cd sandbox/go/$dir && go mod download -json $mod)" "$err"; }
  rm -f "$err"
  python3 -c '
import json, sys
d = json.loads(sys.argv[1])
if d.get("Error") or not d.get("Dir"):
    sys.stderr.write(d.get("Error") or "no Dir in: " + sys.argv[1]); sys.exit(1)
print(d["Dir"])' "$json" || fail "$comp" "(cd sandbox/go/$dir && go mod download -json $mod) gave no source directory" "$json"
}

build(){ # name dir outfile pkg [ldflags]
  local name=$1 dir=$2 out=$3 pkg=$4 ld=${5:-}
  if [[ -x "$BIN/$out" ]]; then return 0; fi
  log "building $name ($pkg)"; local t0=$SECONDS
  ( cd "$HERE/go/$dir" && /usr/bin/time -f "%e s, max RSS %M KB" -o "$OUT/logs/$out.time" \
      go build -p 2 -ldflags "-s -w $ld" -o "$BIN/$out.tmp" "$pkg" ) >"$OUT/logs/$out.log" 2>&1 ||
    fail "$name" "(cd sandbox/go/$dir && go build -o $out $pkg); full log $OUT/logs/$out.log" "$OUT/logs/$out.log"
  mv "$BIN/$out.tmp" "$BIN/$out"; log "built $name in $((SECONDS-t0)) s ($(cat "$OUT/logs/$out.time"))"
}

# Karpenter's operator binds its metrics and health servers to ":<port>" - every interface - in
# pkg/operator/operator.go of sigs.k8s.io/karpenter. The sandbox keeps everything on 127.0.0.1, so the
# controller is built in a Go workspace (outside the repository) that uses a copy of the pinned core
# module with both bind addresses set to 127.0.0.1 (go -overlay refuses files in the module cache).
# Nothing of upstream is committed: the sed below is the whole patch, and the build fails unless it
# matches exactly two lines.
loopback_ws(){ # component gomod-dir -> prints the go.work path
  local comp=$1 dir=$2 src ws
  ws="$OUT/$dir-ws"
  if [[ ! -f "$ws/go.work" ]]; then
    src=$(mod_dir "$comp" "$dir" sigs.k8s.io/karpenter)
    rm -rf "$ws"; mkdir -p "$ws"
    cp -r "$src" "$ws/karpenter"; chmod -R u+w "$ws/karpenter"
    sed -E -i 's/fmt\.Sprintf\(":%d", options\.FromContext\(ctx\)\.(MetricsPort|HealthProbePort)\)/fmt.Sprintf("127.0.0.1:%d", options.FromContext(ctx).\1)/' \
      "$ws/karpenter/pkg/operator/operator.go"
    if [[ $(grep -c '"127.0.0.1:%d"' "$ws/karpenter/pkg/operator/operator.go") -ne 2 ]]; then
      fail "$comp" "loopback patch of pkg/operator/operator.go" "sigs.k8s.io/karpenter changed; update the sed in sandbox/build.sh"
    fi
    (cd "$ws" && go work init "$HERE/go/$dir" ./karpenter) 2>"$ws.err" || fail "$comp" "go work init" "$ws.err"
  fi
  echo "$ws/go.work"
}

if [[ $MODE == --resolve ]]; then
  mod_dir "$2" "$3" "$4"
  exit 0
fi
if [[ $MODE == --sources ]]; then  # resolve every module source (what a cold build downloads first)
  for d in etcd kwok helm k8s karpenter-aws; do
    log "downloading the modules of go/$d"
    e=$(mktemp); (cd "$HERE/go/$d" && go mod download) 2>"$e" || fail "$d" "(cd sandbox/go/$d && go mod download)" "$e"; rm -f "$e"
  done
  mod_dir karpenter-aws karpenter-aws sigs.k8s.io/karpenter
  mod_dir karpenter-aws karpenter-aws github.com/aws/karpenter-provider-aws
  exit 0
fi

build etcd     etcd      etcd     go.etcd.io/etcd/server/v3
build etcdctl  etcd      etcdctl  go.etcd.io/etcd/etcdctl/v3
build kwok     kwok      kwok     sigs.k8s.io/kwok/cmd/kwok
# The Karpenter controller users run on EKS: the AWS provider (real EC2NodeClass, interruption, drift
# controllers), pointed at the AWS emulator by the sandbox.
if [[ ! -x "$BIN/karpenter" ]]; then
  WS=$(loopback_ws karpenter-aws karpenter-aws)
  GOWORK=$WS build "karpenter (AWS provider $KARPENTER_AWS_VERSION, core $KARPENTER_CORE_VERSION)" karpenter-aws karpenter \
    github.com/aws/karpenter-provider-aws/cmd/controller "-X sigs.k8s.io/karpenter/pkg/operator.Version=$KARPENTER_AWS_VERSION"
fi
if [[ $MODE == --lts && ! -x "$BIN/karpenter-lts" ]]; then
  LTS_VERSION=$(gomod_version karpenter-aws-lts github.com/aws/karpenter-provider-aws)
  WS=$(loopback_ws karpenter-lts karpenter-aws-lts)
  GOWORK=$WS build "karpenter LTS (AWS provider $LTS_VERSION)" karpenter-aws-lts karpenter-lts \
    github.com/aws/karpenter-provider-aws/cmd/controller "-X sigs.k8s.io/karpenter/pkg/operator.Version=$LTS_VERSION"
fi
build helm     helm      helm     helm.sh/helm/v3/cmd/helm
MINOR=$(echo "$K8S_VERSION" | cut -d. -f2); NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
KLD=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  KLD+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean -X $p.buildDate=$NOW"
done
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  build "$c" k8s "$c" "k8s.io/kubernetes/cmd/$c" "$KLD"
done

# Data from the Go module cache: the AWS provider's chart and CRDs (the same module version as the
# controller: what EKS users install), kwok stages, Prometheus-operator and Kyverno CRDs (objects
# only; no controllers of theirs run in the sandbox).
if [[ ! -d "$DATA" ]]; then
  log "fetching chart/CRD data from the Go module proxy"
  AWS=$(mod_dir karpenter-aws karpenter-aws github.com/aws/karpenter-provider-aws)
  PROM=$(mod_dir prometheus-operator-crds - "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
  KYV=$(mod_dir kyverno-crds - "github.com/kyverno/kyverno@$KYVERNO_VERSION")
  KWOKD=$(mod_dir kwok-stages kwok sigs.k8s.io/kwok)
  T="$DATA.tmp"; rm -rf "$T"; mkdir -p "$T/crds/karpenter" "$T/crds/extra"
  cp -r "$AWS/charts/karpenter" "$T/aws-chart"
  cp "$AWS"/pkg/apis/crds/*.yaml "$T/crds/karpenter/"
  echo "$KARPENTER_AWS_VERSION" >"$T/karpenter-version"
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
