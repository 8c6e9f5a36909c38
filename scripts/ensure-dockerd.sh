#!/usr/bin/env bash
# Start the Docker Engine if it is not answering, with no bridge and no iptables (host networking only; these
# machines allow no traffic to private-range addresses). Storage: overlay2 where the kernel mounts an overlay
# on the root file system (where /var/lib/docker is), vfs otherwise; K8SDEPLOY_STORAGE_DRIVER=vfs|overlay2
# decides instead. vfs copies an image's whole file system for each container and each build step; overlay2
# shares the layers. Idempotent: an engine that answers is used as it is, whatever its driver.
set -euo pipefail

# Does an overlay mount work here? Tried in a scratch directory on the root file system, then removed.
overlay_works() {
    local dir status=1
    dir=$(mktemp -d /var/lib/k8sdeploy-overlay-probe.XXXXXX 2>/dev/null) || return 1
    mkdir "$dir/lower" "$dir/upper" "$dir/work" "$dir/merged"
    if mount -t overlay overlay -o "lowerdir=$dir/lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged" \
        2>/dev/null; then
        umount "$dir/merged"
        status=0
    fi
    rm -rf "$dir"
    return $status
}

# The running dockerd was started by this script (now or on an earlier run): its flags are ours.
started_here() {
    local pid
    pid=$(cat /var/run/docker.pid 2>/dev/null) || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--bridge=none --iptables=false"
}

case "${K8SDEPLOY_STORAGE_DRIVER:-}" in
    "" | vfs | overlay2) ;;
    *)
        echo "K8SDEPLOY_STORAGE_DRIVER is '$K8SDEPLOY_STORAGE_DRIVER'; set it to vfs or overlay2, or unset it" >&2
        exit 2
        ;;
esac

if running=$(docker info --format '{{.Driver}}' 2>/dev/null); then
    if [ "$running" = vfs ] && [ -z "${K8SDEPLOY_STORAGE_DRIVER:-}" ] && started_here && overlay_works; then
        echo "note: dockerd runs on vfs, and this machine can use overlay2 (much faster): stop it with" \
            "'kill \$(cat /var/run/docker.pid)' and run 'make docker-engine' (images are loaded again)" >&2
    fi
    exit 0
fi
if ! command -v dockerd >/dev/null; then
    echo "dockerd is not installed: run 'make system-deps' (Debian package docker.io)" >&2
    exit 1
fi
driver=${K8SDEPLOY_STORAGE_DRIVER:-}
if [ -z "$driver" ]; then
    if overlay_works; then driver=overlay2; else driver=vfs; fi
fi
log=${DOCKERD_LOG:-/var/log/k8sdeploy-dockerd.log}
echo "starting dockerd with the $driver storage driver (log: $log)" >&2
nohup dockerd --storage-driver="$driver" --bridge=none --iptables=false --ip6tables=false >"$log" 2>&1 &
for _ in $(seq 1 60); do
    if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
        exit 0
    fi
    sleep 0.5
done
echo "dockerd did not answer within 30s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1
