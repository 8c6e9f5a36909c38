#!/usr/bin/env bash
# Builds the control plane the tests run against, from the Go modules pinned beside this script:
#   kube/go.mod  k8s.io/kubernetes (kube-apiserver, kube-controller-manager, kube-scheduler) and the
#                etcd server that this Kubernetes version requires (go.etcd.io/etcd/server/v3)
#   kwok/go.mod  sigs.k8s.io/kwok (simulated nodes and pod states), and its CRDs and stages
# into $K8SDEPLOY_CACHE/kube/VERSION-KEY/ (default ~/.cache/k8sdeploy), KEY being a digest of the two
# go.mod and go.sum pairs, so the binaries are rebuilt only when a pin changes. Prints the directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${K8SDEPLOY_CACHE:-$HOME/.cache/k8sdeploy}
version=$(cd "$here/kube" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
key=$(cat "$here"/kube/go.mod "$here"/kube/go.sum "$here"/kwok/go.mod "$here"/kwok/go.sum | sha256sum | cut -c1-12)
out="$cache/kube/$version-$key"
bins=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)
built() { for b in "${bins[@]}"; do [ -x "$out/$b" ] || return 1; done; [ -d "$out/kwok-data/crd" ]; }
if built; then echo "$out"; exit 0; fi

mkdir -p "$out.tmp"
minor=${version#v1.}; minor=${minor%%.*}
pkg=k8s.io/component-base/version
stamp="-X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
stamp="$stamp -X $pkg.buildDate=1970-01-01T00:00:00Z"
stamp="$stamp ${stamp//component-base\/version/client-go\/pkg\/version}"
export CGO_ENABLED=0
start=$(date +%s)
echo "building the control plane $version into $out (cold: about 6 minutes on 2 cores)" >&2
(cd "$here/kube" && go build -trimpath -tags=selinux,notest -ldflags "-s -w $stamp" -o "$out.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler)
etcd_version=$(cd "$here/kube" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
(cd "$here/kube" && go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$etcd_version" \
    -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3)
(cd "$here/kwok" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/kwok" sigs.k8s.io/kwok/cmd/kwok)
# kwok's CRDs (Stage, ClusterLogs) and its volume provisioner's stages, data read at start-up
kwok_dir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
mkdir -p "$out.tmp/kwok-data/crd" "$out.tmp/kwok-data/stage"
cp "$kwok_dir"/kustomize/crd/bases/kwok.x-k8s.io_{stages,clusterlogs}.yaml "$out.tmp/kwok-data/crd/"
cp -r "$kwok_dir"/kustomize/stage/{node,pod,volume} "$out.tmp/kwok-data/stage/"
chmod -R u+w "$out.tmp/kwok-data"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "built in $(( $(date +%s) - start )) s" >&2
echo "$out"
