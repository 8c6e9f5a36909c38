#!/usr/bin/env bash
# Builds the control plane and the real node the tests run against, from the Go modules pinned beside it:
#   kube/go.mod       k8s.io/kubernetes (kube-apiserver, kube-controller-manager, kube-scheduler; the node's
#                     kubelet and kube-proxy) and the etcd server that this Kubernetes version requires
#                     (go.etcd.io/etcd/server/v3); the pause program of the pod sandboxes, from its C source
#                     in the same module (build/pause/linux/pause.c), compiled statically with gcc
#   kwok/go.mod       sigs.k8s.io/kwok (simulated nodes and pod states), and its CRDs and stages
#   coredns/go.mod    github.com/coredns/coredns (the cluster's DNS, on the real node)
#   localpath/go.mod  github.com/rancher/local-path-provisioner (claims provisioned on the real node's disk)
# into $K8SDEPLOY_CACHE/kube/VERSION-KEY/ (default ~/.cache/k8sdeploy), KEY being a digest of the go.mod
# and go.sum pairs, so the binaries are rebuilt only when a pin changes. Prints the directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${K8SDEPLOY_CACHE:-$HOME/.cache/k8sdeploy}
version=$(cd "$here/kube" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
modules=(kube kwok coredns localpath)
key=$(for m in "${modules[@]}"; do cat "$here/$m/go.mod" "$here/$m/go.sum"; done | sha256sum | cut -c1-12)
out="$cache/kube/$version-$key"
bins=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok kubelet kube-proxy pause coredns
    local-path-provisioner)
built() {
    for b in "${bins[@]}"; do [ -x "$out/$b" ] || return 1; done
    [ -d "$out/kwok-data/crd" ] && [ -f "$out/localpath-data/local-path-storage.yaml" ]
}
if built; then echo "$out"; exit 0; fi

mkdir -p "$out.tmp"
minor=${version#v1.}; minor=${minor%%.*}
pkg=k8s.io/component-base/version
stamp="-X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
stamp="$stamp -X $pkg.buildDate=1970-01-01T00:00:00Z"
stamp="$stamp ${stamp//component-base\/version/client-go\/pkg\/version}"
export CGO_ENABLED=0
start=$(date +%s)
echo "building the control plane and node $version into $out (cold: about 9 minutes on 2 cores)" >&2
(cd "$here/kube" && go build -trimpath -tags=selinux,notest -ldflags "-s -w $stamp" -o "$out.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
kube_dir=$(cd "$here/kube" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
gcc -Os -static -DVERSION="$version" -o "$out.tmp/pause" "$kube_dir/build/pause/linux/pause.c"
strip "$out.tmp/pause"
etcd_version=$(cd "$here/kube" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
(cd "$here/kube" && go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$etcd_version" \
    -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3)
(cd "$here/kwok" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/kwok" sigs.k8s.io/kwok/cmd/kwok)
(cd "$here/coredns" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/coredns" github.com/coredns/coredns)
(cd "$here/localpath" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/local-path-provisioner" \
    github.com/rancher/local-path-provisioner)
# kwok's CRDs (Stage, ClusterLogs) and its volume provisioner's stages, data read at start-up
kwok_dir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
mkdir -p "$out.tmp/kwok-data/crd" "$out.tmp/kwok-data/stage"
cp "$kwok_dir"/kustomize/crd/bases/kwok.x-k8s.io_{stages,clusterlogs}.yaml "$out.tmp/kwok-data/crd/"
cp -r "$kwok_dir"/kustomize/stage/{node,pod,volume} "$out.tmp/kwok-data/stage/"
chmod -R u+w "$out.tmp/kwok-data"
# local-path-provisioner's own manifests: its ConfigMap (the helper pod, the set-up and tear-down scripts)
lpp_dir=$(cd "$here/localpath" && go list -m -f '{{.Dir}}' github.com/rancher/local-path-provisioner)
mkdir -p "$out.tmp/localpath-data" && cp "$lpp_dir/deploy/local-path-storage.yaml" "$out.tmp/localpath-data/"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "built in $(( $(date +%s) - start )) s" >&2
echo "$out"
