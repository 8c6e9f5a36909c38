#!/usr/bin/env bash
# Start the Docker Engine if it is not answering: vfs storage, no bridge, no iptables (host
# networking only; these machines allow no traffic to private-range addresses). Idempotent.
set -euo pipefail
if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    exit 0
fi
if ! command -v dockerd >/dev/null; then
    echo "dockerd is not installed: run 'make system-deps' (Debian package docker.io)" >&2
    exit 1
fi
log=${DOCKERD_LOG:-/var/log/k8sdeploy-dockerd.log}
echo "starting dockerd (log: $log)" >&2
nohup dockerd --storage-driver=vfs --bridge=none --iptables=false --ip6tables=false >"$log" 2>&1 &
for _ in $(seq 1 60); do
    if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
        exit 0
    fi
    sleep 0.5
done
echo "dockerd did not answer within 30s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1
