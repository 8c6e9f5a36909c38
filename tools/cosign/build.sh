#!/usr/bin/env bash
# Builds cosign, the reference verifier the signing tests check k8sdeploy's signatures and attestations with,
# from the Go module pinned beside this script (go.mod: github.com/sigstore/cosign/v3, no replace directives),
# into $K8SDEPLOY_CACHE/cosign/VERSION-KEY/cosign (default ~/.cache/k8sdeploy), KEY being a digest of go.mod and
# go.sum, so it is rebuilt only when the pin changes. Prints the path of the binary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${K8SDEPLOY_CACHE:-$HOME/.cache/k8sdeploy}
version=$(cd "$here" && go list -m -f '{{.Version}}' github.com/sigstore/cosign/v3)
key=$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-12)
out="$cache/cosign/$version-$key"
if [ -x "$out/cosign" ]; then echo "$out/cosign"; exit 0; fi

mkdir -p "$out.tmp"
export CGO_ENABLED=0
start=$(date +%s)
echo "building cosign $version into $out (cold: about 5 minutes on 2 cores)" >&2
pkg=sigs.k8s.io/release-utils/version
(cd "$here" && go build -trimpath -ldflags "-s -w -X $pkg.gitVersion=$version -X $pkg.gitTreeState=clean" \
    -o "$out.tmp/cosign" github.com/sigstore/cosign/v3/cmd/cosign)
rm -rf "$out" && mv "$out.tmp" "$out"
echo "built in $(( $(date +%s) - start )) s" >&2
echo "$out/cosign"
