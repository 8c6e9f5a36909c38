#!/usr/bin/env bash
# Builds the tools bench/peers_bench.py compares k8sdeploy with, from the Go modules pinned beside this script:
#   kubectl/go.mod  k8s.io/kubectl (kubectl's library; kubectl/main.go is k8s.io/kubernetes/cmd/kubectl's main)
#   helm/go.mod     helm.sh/helm/v4 (its cmd/helm)
# into $K8SDEPLOY_CACHE/peers/KEY/ (default ~/.cache/k8sdeploy), KEY being a digest of the pins and main.go, so
# they are rebuilt only when a pin changes (a cold build takes about 3 minutes on 2 cores). Prints the directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${K8SDEPLOY_CACHE:-$HOME/.cache/k8sdeploy}
key=$(cat "$here"/kubectl/go.mod "$here"/kubectl/go.sum "$here"/kubectl/main.go "$here"/helm/go.mod \
    "$here"/helm/go.sum | sha256sum | cut -c1-12)
out="$cache/peers/$key"
if [ -x "$out/kubectl" ] && [ -x "$out/helm" ]; then echo "$out"; exit 0; fi

mkdir -p "$out.tmp"
export CGO_ENABLED=0
start=$(date +%s)
echo "building kubectl and helm into $out (cold: about 3 minutes on 2 cores)" >&2
kversion=$(cd "$here/kubectl" && go list -m -f '{{.Version}}' k8s.io/kubectl)
kversion=v1.${kversion#v0.}
minor=${kversion#v1.}; minor=${minor%%.*}
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp="$stamp -X $pkg.gitVersion=$kversion -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    stamp="$stamp -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
(cd "$here/kubectl" && go build -trimpath -ldflags "-s -w $stamp" -o "$out.tmp/kubectl" .)
hversion=$(cd "$here/helm" && go list -m -f '{{.Version}}' helm.sh/helm/v4)
(cd "$here/helm" && go build -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$hversion" \
    -o "$out.tmp/helm" helm.sh/helm/v4/cmd/helm)
rm -rf "$out" && mv "$out.tmp" "$out"
echo "built in $(( $(date +%s) - start )) s" >&2
echo "$out"
